"""schemathesis against the /logs routes of a real server, from the app's own OpenAPI schema.

Every generated request, with valid and with invalid parameters, must get no 5xx, a status
the schema documents, the documented content type, and a body matching the documented
response schema; also in the configurations where the routes refuse (no token sent, no
store, reachable from other machines), whose refusals the schema must document too.
GET /logs/stream is left out: its answer never ends, so a request-response fuzzer would
wait forever (tests/test_logs_api_stream.py covers its parameters).

schemathesis' own pytest integration (``schemathesis.pytest.from_fixture``) does not run
under pytest 9 (it reads ``request.node._nodeid``, which pytest 9 removed), so each
operation's Hypothesis strategy is driven here with ``@given``.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from ccproxy_core.testing import wait_until

EVERYTHING_ON = {
    "metrics_endpoint_enabled": True,
    "logs_collection_enabled": True,
    "logs_endpoints_enabled": True,
    "dashboard_enabled": True,
    "log_flush_interval_seconds": 0.05,
}
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
TOKEN = "fuzz-token"
LOGS_OPERATIONS = {
    ("GET", "/logs/status"),
    ("GET", "/logs/query"),
    ("GET", "/logs/analytics"),
    ("GET", "/logs/entries"),
    ("POST", "/logs/reset"),
    ("GET", "/logs/sessions"),
    ("GET", "/logs/sessions/{session_id}"),
    ("GET", "/logs/session"),
}

# name: (settings sections, headers sent with each request, checks, generation modes, examples per operation and mode)
CONFIGURATIONS = {
    "everything-on": (
        {"observability": EVERYTHING_ON},
        {},
        [not_a_server_error, *CONFORMANCE],
        list(GenerationMode),
        25,
    ),
    "token-sent": (
        {"observability": EVERYTHING_ON, "security": {"auth_token": TOKEN}},
        {"Authorization": f"Bearer {TOKEN}"},
        [not_a_server_error, *CONFORMANCE],
        list(GenerationMode),
        10,
    ),
    "token-not-sent": (
        {"observability": EVERYTHING_ON, "security": {"auth_token": TOKEN}},
        {},
        [not_a_server_error, *CONFORMANCE],
        [GenerationMode.POSITIVE],
        5,
    ),
    "reachable-without-token": (
        {"observability": EVERYTHING_ON, "server": {"host": "0.0.0.0"}},
        {},
        [not_a_server_error, *CONFORMANCE],
        [GenerationMode.POSITIVE],
        5,
    ),
    # Without a store the data routes answer 503 by design (naming the settings), so only conformance is checked.
    "no-store": ({"observability": {"logs_endpoints_enabled": True}}, {}, CONFORMANCE, [GenerationMode.POSITIVE], 5),
}


def fill_with_rows(proxy_url: str) -> None:
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-fuzz", max_retries=0)
    for model in ("claude-haiku-4-5", "claude-opus-4-1"):
        claude.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    token = {"Authorization": f"Bearer {TOKEN}"}  # ignored when no token is set
    wait_until(lambda: httpx.get(proxy_url + "/logs/status", headers=token).json()["row_count"] == 2)


def logs_operations(proxy_url: str) -> list:
    """The /logs operations (but the stream) in the schema the server publishes."""
    token = {"Authorization": f"Bearer {TOKEN}"}  # the schema is behind the token when one is set
    schema = schemathesis.openapi.from_url(proxy_url + "/openapi.json", headers=token)
    subset = schema.include(path_regex="^/logs/").exclude(path="/logs/stream")
    return [result.ok() for result in subset.get_all_operations()]


def fuzz(operation, mode: GenerationMode, headers: dict, checks: list, examples: int) -> str | None:
    """Run ``checks`` on generated requests for ``operation``; the first failure's report, or None."""

    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(session=session, headers=headers, checks=checks)

    try:
        with session:
            run()
    except Unsatisfiable:  # an operation without parameters has no invalid requests to make
        assert mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters())
    except (FailureGroup, Exception) as failure:  # noqa: BLE001 - a FailureGroup is a BaseExceptionGroup
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}"
    return None


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_logs_routes_conform_to_their_schema(proxy_factory, configuration):
    sections, headers, checks, modes, examples = CONFIGURATIONS[configuration]
    proxy = proxy_factory(**sections)
    if sections["observability"].get("logs_collection_enabled"):
        fill_with_rows(proxy.url)
    operations = logs_operations(proxy.url)
    assert {(operation.method.upper(), operation.path) for operation in operations} == LOGS_OPERATIONS
    failures = [
        report
        for operation in operations
        for mode in modes
        if (report := fuzz(operation, mode, headers, checks, examples)) is not None
    ]
    assert not failures, "\n\n".join(failures)
