"""The ``ccproxy`` command: serve, demo, report, key-id, plugins list, config show, mock-upstream."""

from __future__ import annotations

import errno
import json
import re
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ccproxy_core import __version__
from ccproxy_core.errors import CcproxyError
from ccproxy_core.runtime.listen_errors import cannot_listen_message
from ccproxy_core.runtime.report import report
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.runtime.settings_loader import load_settings

if TYPE_CHECKING:
    from ccproxy_core.testing.mock_upstream import MockServer

PORT = click.IntRange(0, 65535)
# The mock's own limits (MAX_MILLISECONDS, MAX_DELTA_COUNT of testing.mock_upstream.options), written out:
# importing that package would load the server stack for every command.
MOCK_MILLISECONDS = click.IntRange(0, 600_000)
MOCK_DELTA_COUNT = click.IntRange(0, 100_000)

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $CCPROXY_CONFIG or ~/.config/ccproxy/config.toml if present).",
)


def _settings_or_exit(config_file: str | None, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        return load_settings(config_file, overrides)
    except CcproxyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _server_overrides(host: str | None, port: int | None, workers: int | None = None) -> dict[str, Any]:
    server = {key: value for key, value in (("host", host), ("port", port), ("workers", workers)) if value is not None}
    return {"server": server} if server else {}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ccproxy")
def main() -> None:
    """ccproxy: an observability proxy for the Anthropic and OpenAI APIs."""


@main.command()
@click.option("--host", default=None, help="Address to listen on [SERVER__HOST, default 127.0.0.1].")
@click.option("--port", type=PORT, default=None, help="Port to listen on [SERVER__PORT, default 8000].")
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Processes serving the port [SERVER__WORKERS, default 1]; with 2 or more, a hub process runs the plugins.",
)
@click.option(
    "--mock-upstream",
    "mock_port",
    type=PORT,
    default=None,
    metavar="PORT",
    help="Start the built-in mock provider on this port and forward to it instead of the real APIs.",
)
@config_option
def serve(
    host: str | None, port: int | None, workers: int | None, mock_port: int | None, config_file: str | None
) -> None:
    """Run the proxy."""
    from ccproxy_core.runtime.serve import run_server

    overrides = _server_overrides(host, port, workers)
    mock = None
    if mock_port is not None:
        mock = _start_mock_or_exit(mock_port)
        overrides["upstream"] = {"anthropic_base_url": mock.url, "openai_base_url": mock.url}
    settings = _settings_or_exit(config_file, overrides)
    if mock is not None and settings.server.port == mock_port:
        mock.stop()
        click.echo(
            f"error: --mock-upstream and the proxy (SERVER__PORT or --port) both ask for port {mock_port}: "
            "give the mock another port",
            err=True,
        )
        sys.exit(2)
    try:
        sys.exit(run_server(settings, config_file, overrides))
    finally:
        if mock is not None:
            mock.stop()


def _start_mock_or_exit(port: int) -> MockServer:
    from ccproxy_core.testing.mock_upstream import serve_mock_in_thread

    try:
        return serve_mock_in_thread(port=port)
    except RuntimeError as exc:
        if not isinstance(exc.__cause__, OSError):
            raise
        line = cannot_listen_message("127.0.0.1", port, exc.__cause__, "--mock-upstream", "--mock-upstream")
        if exc.__cause__.errno == errno.EADDRINUSE:
            line += (
                " (to use a mock already running there, drop --mock-upstream and point"
                " UPSTREAM__ANTHROPIC_BASE_URL and UPSTREAM__OPENAI_BASE_URL at it)"
            )
        click.echo(f"error: {line}", err=True)
        sys.exit(1)


@main.command()
@click.option("--port", type=PORT, default=8000, show_default=True, help="Port for the proxy (0: any free port).")
@click.option(
    "--requests",
    "request_count",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Demo requests to send.",
)
@click.option("--once", is_flag=True, help="Send the demo traffic, check it was recorded, then exit.")
def demo(port: int, request_count: int, once: bool) -> None:
    """Run the proxy with every observability feature on, against the mock provider, with demo traffic."""
    from ccproxy_core.runtime.demo import run_demo

    try:
        listening = socket.create_server(("127.0.0.1", port))
    except OSError as exc:
        click.echo(f"error: {cannot_listen_message('127.0.0.1', port, exc, '--port', '--port')}", err=True)
        sys.exit(1)
    sys.exit(run_demo(listening, request_count=request_count, once=once))


@main.group()
def plugins() -> None:
    """Inspect plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@config_option
def plugins_list(as_json: bool, config_file: str | None) -> None:
    """Every discovered plugin: version, distribution, hooks, and whether it is enabled and why."""
    from ccproxy_core.plugin_host.plugins import get_plugin_manager

    settings = _settings_or_exit(config_file)
    # Strict mode stops `serve` at a broken plugin; this is where to see every one that is broken.
    settings = settings.model_copy(update={"plugins": settings.plugins.model_copy(update={"strict": False})})
    try:
        infos = get_plugin_manager(settings).ccproxy_plugins
    except CcproxyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([vars(info) for info in infos], indent=2))
        return
    rows = [
        (
            i.name,
            i.version or "-",
            i.distribution or "-",
            ",".join(i.hooks) or "-",
            ("enabled: " if i.enabled else "disabled: ") + i.reason,
        )
        for i in infos
    ]
    _print_table(("NAME", "VERSION", "DISTRIBUTION", "HOOKS", "STATUS"), rows)


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@main.group()
def config() -> None:
    """Inspect settings."""


@config.command("show")
@config_option
def config_show(config_file: str | None) -> None:
    """Print the effective settings as JSON, the plugins' own settings included (every credential masked, URL user:password included)."""
    from ccproxy_core.plugin_host.plugins import get_plugin_manager

    settings = _settings_or_exit(config_file)
    try:
        get_plugin_manager(settings)  # binds plugins loaded only from custom entry points too
    except CcproxyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(_masked(settings.model_dump(mode="json")), indent=2))


_CREDENTIAL_NAME = re.compile(
    r"(?:^|[-_.])(?:api[-_]?key|key|keys|token|secret|secrets|password|passwd|pass|passphrase|pwd|credentials?|auth"
    r"|authorization|cookie|bearer|salt|dsn)$|private[-_]?key|webhook(?:[-_]?url)?$"
)
"""A setting or header named as a credential is (``api_key``, ``db_password``, ``credentials``, ``X-Api-Key``,
``Authorization``, a webhook's URL, whose path is the key), not one that only holds such a word (``token_url``,
``password_file``, ``max_tokens_per_request``)."""


def _masked(value: Any, name: str = "", within_credential: bool = False) -> Any:
    """Settings as JSON with credentials masked: secret fields are already ``**********``, and so is every plain
    string under a credential's name (a plugin's ``api_key: str``, each entry of its ``credentials`` table);
    this also masks what hides in plain strings (``https://user:pass@host``, ``?key=...``, ``sk-...`` keys)."""
    from ccproxy_core.safe_values import redact_secrets
    from ccproxy_core.url_masking import masked_url

    secret = within_credential or bool(_CREDENTIAL_NAME.search(name.lower()))
    if isinstance(value, dict):
        # ccproxy's own attribution.keys names key fingerprints, not keys: its names are shown
        return {key: _masked(item, key, secret and name != "keys") for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, name, secret) for item in value]
    if isinstance(value, str):
        return "**********" if value and secret else redact_secrets(masked_url(value))
    return value


MAX_KEY_CHARS = 64 * 1024
"""The longest key ``key-id`` reads (a gateway's signed token may run to a few KiB; no API key comes near)."""


@main.command("mock-upstream")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=PORT, default=9100, show_default=True)
@click.option("--latency-ms", type=MOCK_MILLISECONDS, default=0, show_default=True, help="Wait before answering.")
@click.option("--delta-count", type=MOCK_DELTA_COUNT, default=20, show_default=True, help="Deltas per streamed answer.")
@click.option(
    "--delta-interval-ms", type=MOCK_MILLISECONDS, default=0, show_default=True, help="Pause between streamed deltas."
)
def mock_upstream(host: str, port: int, latency_ms: int, delta_count: int, delta_interval_ms: int) -> None:
    """Run the mock LLM provider (both wire formats, streaming and not, with fault injection)."""
    from ccproxy_core.testing.mock_upstream import MockOptions, run_mock_upstream

    options = MockOptions(latency_ms=latency_ms, delta_count=delta_count, delta_interval_ms=delta_interval_ms)
    try:
        run_mock_upstream(host, port, options)
    except (OSError, UnicodeError) as exc:
        click.echo(f"error: {cannot_listen_message(host, port, exc, '--host', '--port')}", err=True)
        sys.exit(1)


main.add_command(report)


@main.command("key-id")
@config_option
def key_id(config_file: str | None) -> None:
    """Print the fingerprint of the API key read from standard input, for [attribution.keys].

    The key is read from stdin (never a command-line argument, which shell history keeps):
    ``printenv ANTHROPIC_API_KEY | ccproxy key-id``.
    """
    from ccproxy_core.accounting.attribution.keys import DEFAULT_SALT, key_fingerprint

    settings = _settings_or_exit(config_file)
    line = sys.stdin.readline(MAX_KEY_CHARS + 1)
    if len(line.rstrip("\r\n")) > MAX_KEY_CHARS:
        click.echo(
            f"error: more than {MAX_KEY_CHARS:,} characters on standard input: no API key is that long", err=True
        )
        sys.exit(2)
    api_key = line.strip()
    if not api_key:
        click.echo("error: no key on standard input: printenv ANTHROPIC_API_KEY | ccproxy key-id", err=True)
        sys.exit(2)
    salt = settings.attribution.key_salt
    click.echo(key_fingerprint(api_key, salt.get_secret_value().encode() if salt else DEFAULT_SALT))
