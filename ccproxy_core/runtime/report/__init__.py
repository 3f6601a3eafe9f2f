"""``ccproxy report``: cost and tokens per day, week, month, session, project, model, key or client, in the terminal."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta

import click

from ccproxy_core.errors import CcproxyError
from ccproxy_core.time_text import iso_time

from .build import KINDS, build_rows, default_window, totals


def _parse_moment(name: str, value: str | None, end_of_day: bool) -> datetime | None:
    """``2025-01-31`` (a whole UTC day) or an ISO 8601 time."""
    if not value:
        return None
    try:
        moment = iso_time(value)  # at the next microsecond when finer, as /logs takes it
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2025-01-31) or ISO time (2025-01-31T12:00)", param_hint=name
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if end_of_day and _is_a_date(value):
            moment += timedelta(days=1)  # --until 2025-01-31 includes that whole day
    except OverflowError:
        raise click.BadParameter(
            f"{value!r} (taken to UTC; a date as --until counts its whole day) falls outside the years 1 to 9999",
            param_hint=name,
        ) from None
    return moment


def _is_a_date(value: str) -> bool:
    """A date alone, in any of ISO's forms (``2025-01-31``, ``20250131``, ``2025-W05-5``), not a time."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _default_start(end: datetime, span: timedelta) -> datetime:
    """The report's default span before an explicit --until."""
    try:
        return end - span
    except OverflowError:
        raise click.BadParameter("reaches back before the year 1: give --since as well", param_hint="--until") from None


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--since", help="First day (2025-01-31) or ISO time; default depends on the report (30 days, ...).")
@click.option("--until", help="Last day, included (2025-01-31), or ISO time, excluded; default now.")
@click.option(
    "--breakdown",
    type=click.Choice(["model", "project", "client", "api_key", "session"]),
    help="List each row's parts by this dimension under it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Rows of session, project, model, key and client reports (the rest are summed as 'other').",
)
@click.option(
    "--url", help="Ask this ccproxy's /logs API (default: the DuckDB file, or the local server when it holds the file)."
)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="TOML config file.")
def report(
    kind: str,
    since: str | None,
    until: str | None,
    breakdown: str | None,
    as_json: bool,
    limit: int,
    url: str | None,
    config_file: str | None,
) -> None:
    """Cost, tokens and requests per day, week, month, session, project, model, key or client (days are UTC)."""
    from ccproxy_core.runtime.settings_loader import load_settings

    from .sources import open_source

    start_default, end_default = default_window(kind)
    end = _parse_moment("--until", until, end_of_day=True) or end_default
    start = _parse_moment("--since", since, end_of_day=False) or (
        start_default if not until else _default_start(end, end_default - start_default)
    )
    if start >= end:
        raise click.BadParameter("must be before --until", param_hint="--since")
    try:
        source = open_source(load_settings(config_file), url)
        try:
            rows = build_rows(source, kind, start, end, breakdown, limit)
        finally:
            source.close()
    except CcproxyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        payload = {
            "report": kind,
            "since": start.isoformat(),
            "until": end.isoformat(),
            "source": source.name,
            "breakdown": breakdown,
            "rows": rows,
            "totals": totals(rows),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console

    from .tables import render

    title = f"ccproxy {kind} report, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    render(Console(), kind, rows, title)
