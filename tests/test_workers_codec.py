"""What travels from a worker to the hub comes back exactly: money to the last digit, times with their zone, None as None."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.plugin_host.admission import Admission
from ccproxy_core.runtime.workers.codec import (
    admissions_from_wire,
    admissions_to_wire,
    context_from_wire,
    context_of_record,
    context_to_wire,
    record_from_wire,
    record_to_wire,
)
from ccproxy_core.runtime.workers.hub import WORKER_EXITED, exited_record


def through_json(value):
    return json.loads(json.dumps(value))


def a_record(**changes) -> AccessRecord:
    values = dict(  # noqa: C408 - keyword arguments read as the record's fields
        request_id="a" * 32,
        timestamp=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        method="POST",
        endpoint="/v1/messages",
        path="/v1/messages",
        query="beta=true",
        client_ip="10.0.0.7",
        user_agent="anthropic-python/1.0 \\x00",
        service_type="anthropic",
        model="claude-haiku-4-5",
        streaming=True,
        status_code=200,
        duration_ms=12.5,
        duration_seconds=0.0125,
        tokens_input=11,
        tokens_output=0,
        cache_read_tokens=None,
        cache_write_tokens=3,
        cost_usd=Decimal("0.000000123456789012345678"),
        cost_sdk_usd=None,
        ttft_ms=0.1 + 0.2,
        cost_input_usd=Decimal("1E-12"),
        priced=True,
        rate_limits={"requests_remaining": 49.0},
        tags={"team": "ünïcode ✓"},
        project="alpha",
        session_id=None,
    )
    values.update(changes)
    return AccessRecord(**values)


def test_a_record_comes_back_field_for_field():
    record = a_record()
    back = record_from_wire(through_json(record_to_wire(record)))
    assert back == record
    assert back.cost_usd == Decimal("0.000000123456789012345678") and isinstance(back.cost_usd, Decimal)
    assert back.timestamp.utcoffset() == timedelta(hours=2)
    assert back.ttft_ms == 0.1 + 0.2


def test_a_context_comes_back_without_its_plugin_state():
    context = RequestContext(
        request_id="b" * 32,
        method="GET",
        path="/v1/models",
        endpoint="/v1/models",
        query="",
        client_ip=None,
        user_agent=None,
        service_type="openai",
        model=None,
        streaming=False,
        started_at=datetime.now(UTC),
        started_monotonic=time.perf_counter(),
        state={"metrics": object()},
        tags={"a": "b"},
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        api_key_id="0123456789ab",
    )
    back = context_from_wire(through_json(context_to_wire(context)))
    assert back.state == {}
    back.state = context.state
    assert back == context


def test_an_end_without_its_start_gets_a_context_from_the_record():
    record = a_record(project="beta", tags={"x": "y"})
    context = context_of_record(record)
    assert (context.request_id, context.started_at, context.project, context.tags) == (
        record.request_id,
        record.timestamp,
        "beta",
        {"x": "y"},
    )


def test_admissions_come_back():
    answers = [
        Admission(
            refuse_status=429,
            error_type="rate_limit_error",
            message="spent",
            headers=(("x-ccproxy-budget-remaining-usd", "alpha=0.0000"),),
        ),
        Admission(),
    ]
    assert admissions_from_wire(through_json(admissions_to_wire(answers))) == answers


def test_a_request_left_by_a_dead_worker_is_recorded_as_such():
    context = context_of_record(a_record())
    context.started_monotonic = time.perf_counter() - 2
    record = exited_record(context, -9)
    assert (record.status_code, record.error_type, record.cost_usd, record.project) == (
        502,
        WORKER_EXITED,
        None,
        "alpha",
    )
    assert record.duration_seconds >= 2 and "-9" in record.error_message
