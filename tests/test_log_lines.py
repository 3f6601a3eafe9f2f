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
from ccproxy_core.runtime.logging_setup import JsonFormatter, LineWriter, NoKeysInDebugLines
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


def test_keys_deep_in_a_debug_message_of_many_short_lines_are_masked():
    message = " \n" * 5000 + "> \tauthorization:\tBearer sk-proj-DEEPLEAK123\n< cookie : s=DEEPLEAK456"
    record = logging.LogRecord("websockets.client", logging.DEBUG, "", 0, message, (), None)
    assert NoKeysInDebugLines().filter(record)
    assert "DEEPLEAK" not in record.getMessage() and record.getMessage().endswith("< cookie: ***")
