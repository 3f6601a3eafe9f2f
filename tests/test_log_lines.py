"""The log-line thread: access lines built off the event loop, every waiting line in one write."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import queue
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from ccproxy_core.runtime.access_log import describe
from ccproxy_core.runtime.logging_setup import JsonFormatter, LineWriter, NoKeysInDebugLines, TextFormatter
from tests.duckdb_records import numbered_record as make_record

TEXT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def write_lines(formatter: logging.Formatter, items: list) -> list[str]:
    stream, lines = io.StringIO(), queue.SimpleQueue[Any]()
    for item in items:
        lines.put(item)
    writer = LineWriter(lines, formatter, stream)
    writer.start()
    writer.stop()
    return stream.getvalue().splitlines()


def test_access_lines_and_other_lines_keep_their_order_and_their_time():
    first, second = make_record(1), make_record(2, model="claude-opus-4-1")
    queued_at = time.time() - 3600  # an hour ago: the line must carry the time it was queued, not written
    other = logging.LogRecord("ccproxy.duckdb", logging.ERROR, "", 0, "cannot write", None, None)
    lines = write_lines(TEXT, [(queued_at, first), other, (queued_at, second)])
    assert len(lines) == 3
    assert lines[0].endswith(f"INFO ccproxy.access: {describe(first)}")
    assert lines[0].startswith(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(queued_at)))
    assert lines[1].endswith("ERROR ccproxy.duckdb: cannot write")
    assert lines[2].endswith(describe(second)) and "claude-opus-4-1" in lines[2]


def test_the_text_formatters_access_lines_are_the_logging_modules_own():
    """TextFormatter builds access lines without a LogRecord: the same text, to the millisecond."""
    records = [make_record(4), make_record(5, cost_usd=None, tokens_input=None, model=None, streaming=True)]
    base = float(int(time.time()))
    moments = [base + step * 0.0004 for step in range(2600)] + [base - 86400 * 200 + 0.9999999, base + 1e-9]
    items = [(moment, records[index % 2]) for index, moment in enumerate(moments)]
    assert write_lines(TextFormatter(), items) == write_lines(TEXT, items)


def test_json_access_lines_carry_the_whole_record():
    record = make_record(3, tags={"team": "search"})
    (line,) = write_lines(JsonFormatter(), [(time.time(), record)])
    parsed = json.loads(line)
    assert parsed["logger"] == "ccproxy.access" and parsed["level"] == "info"
    assert parsed["message"] == describe(record)
    assert parsed["access"] == json.loads(json.dumps(record.to_dict()))
    assert parsed["access"]["tags"] == {"team": "search"}


def test_a_line_that_cannot_be_formatted_does_not_cost_the_others():
    class Picky(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if "boom" in record.getMessage():
                raise ValueError("boom")
            return record.getMessage()

    bad = logging.LogRecord("ccproxy.x", logging.INFO, "", 0, "boom", None, None)
    good = logging.LogRecord("ccproxy.x", logging.INFO, "", 0, "fine", None, None)
    assert write_lines(Picky(), [bad, good]) == ["ccproxy.x: a log line could not be formatted (ValueError)", "fine"]


def test_to_dict_converts_every_decimal_and_datetime_field():
    record = make_record(4, cost_sdk_usd=Decimal("0.5"), cost_tools_usd=Decimal("0.01"), reasoning_tokens=7)
    expected = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        expected[item.name] = (
            float(value) if isinstance(value, Decimal) else value.isoformat() if isinstance(value, datetime) else value
        )
    assert record.to_dict() == expected
    assert all(not isinstance(value, (Decimal, datetime)) for value in record.to_dict().values())


def test_keys_in_library_debug_lines_are_masked():
    keys = ["sk-proj-DEBUGLEAK123456", "gw-PLAINKEY-7777abcd"]
    lines = [
        ("uvicorn.error", "< authorization: Bearer %s", (keys[0],)),
        ("websockets.server", "> X-API-Key: %s", (keys[1],)),
        ("uvicorn.error", "< upgrade: websocket", ()),
        # A browser's ephemeral key as a subprotocol: masked whatever its shape.
        ("uvicorn.error", "< sec-websocket-protocol: realtime,openai-insecure-api-key.%s", ("ek_68a1b2c3d4e5f6",)),
    ]
    shown = []
    for name, message, args in lines:
        record = logging.LogRecord(name, logging.DEBUG, "", 0, message, args, None)
        assert NoKeysInDebugLines().filter(record)
        shown.append(record.getMessage())
    assert shown == [
        "< authorization: ***",
        "> X-API-Key: ***",
        "< upgrade: websocket",
        "< sec-websocket-protocol: realtime,openai-insecure-api-key.***",
    ]


def test_websocket_frames_at_debug_show_their_kind_and_size_never_their_text():
    from websockets.frames import Frame, Opcode

    echoed = b'{"type": "error", "error": {"message": "key gw-PLAINKEY-7777abcd is not valid"}}'
    record = logging.LogRecord("websockets.client", logging.DEBUG, "", 0, "< %s", (Frame(Opcode.TEXT, echoed),), None)
    assert NoKeysInDebugLines().filter(record)
    # Before: "< TEXT '{\"type\": \"error\", ...7777abcd is not valid\"}}' [83 bytes]", a key no mask knows.
    assert record.getMessage() == f"< TEXT [{len(echoed)} bytes]"
    ping = logging.LogRecord("websockets.client", logging.DEBUG, "", 0, "> %s", (Frame(Opcode.PING, b"hi"),), None)
    assert NoKeysInDebugLines().filter(ping) and "PING 'hi'" in ping.getMessage()
    reason = (1008).to_bytes(2, "big") + b"bad key SK-PROJ-LEAKCANARYUU7YY0TT3RR6EE9WW2QQ5AA8"  # a provider's close
    close = logging.LogRecord("uvicorn.error", logging.DEBUG, "", 0, "> %s", (Frame(Opcode.CLOSE, reason),), None)
    assert NoKeysInDebugLines().filter(close) and close.getMessage() == f"> CLOSE 1008 [{len(reason)} bytes]"


def test_keys_deep_in_a_debug_message_of_many_short_lines_are_masked():
    message = " \n" * 5000 + "> \tauthorization:\tBearer sk-proj-DEEPLEAK123\n< cookie : s=DEEPLEAK456"
    record = logging.LogRecord("websockets.client", logging.DEBUG, "", 0, message, (), None)
    assert NoKeysInDebugLines().filter(record)
    assert "DEEPLEAK" not in record.getMessage() and record.getMessage().endswith("< cookie: ***")


def test_a_credential_in_a_url_a_library_warns_about_is_masked_at_any_level():
    # An OpenTelemetry exporter names its endpoint, query and all, in every failed export.
    message = "Transient error %s encountered while exporting span batch, retrying in %ss."
    reason = "Max retries exceeded with url: /v1/traces?token=OTLPQUERYSECRET (Caused by ...)"
    record = logging.LogRecord(
        "opentelemetry.exporter.otlp.proto.http.trace_exporter", logging.WARNING, "", 0, message, (reason, 1), None
    )
    assert NoKeysInDebugLines().filter(record)
    assert "OTLPQUERYSECRET" not in record.getMessage() and "token=***" in record.getMessage()


def test_a_library_repeating_a_warning_writes_it_once_a_minute_saying_how_many_were_held_back(monkeypatch):
    from ccproxy_core.runtime import library_lines

    clock = [1000.0]
    monkeypatch.setattr(library_lines.time, "monotonic", lambda: clock[0])
    limited = library_lines.LibraryWarningsLimited()

    def line(name: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord(name, level, "", 0, message, ("x",), None)

    exporter = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    passed = [limited.filter(line(exporter, "Transient error %s")) for _ in range(50)]
    assert passed == [True] + [False] * 49
    assert limited.filter(line(exporter, "Failed to export batch %s"))  # another kind of line
    assert limited.filter(line("ccproxy.pushgateway", "push failed %s"))  # ccproxy limits its own
    assert all(limited.filter(line(exporter, "retry %s", logging.INFO)) for _ in range(3))  # below warnings
    clock[0] += 61
    later = line(exporter, "Transient error %s")
    assert limited.filter(later)
    assert later.getMessage() == "Transient error x (49 more like this in the last minute were not logged)"


def test_an_access_line_shows_counts_the_answer_did_not_give_as_a_dash():
    record = make_record(4, tokens_input=None, tokens_output=None, cache_read_tokens=None, cache_write_tokens=None)
    assert " in=- out=- cache_r=- cache_w=- " in describe(record)  # before: in=None out=None ...
    assert " in=12 out=0 " in describe(make_record(5, tokens_input=12, tokens_output=0))
