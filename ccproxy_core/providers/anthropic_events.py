"""An Anthropic Messages stream's events as the SDKs read them: their names, and where the message ends.

The SDKs know an event by its ``event:`` line, read as the SSE specification reads a field (one space
after the colon dropped, nothing else): ``ping`` is skipped and ``error`` raised on, whatever their data
says; an event without one is skipped; any other named event is handed on and read by its data's ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ccproxy_core.accounting.sse_parser import search_data_lines
from ccproxy_core.json_text import decode_json, too_costly_to_decode

_TERMINAL = re.compile(rb'"type"\s*:\s*"message_stop"')
_EVENT_LINE = re.compile(rb"(?m)^event(?::(.*)|\r?)$")  # "event" alone gives an empty name: unnamed
_BLANK_LINE = re.compile(rb"\n\r?\n")
# The values after "event:" that name an event the SDKs skip, ping or unnamed: one space after the colon
# dropped, the line's end (a set lookup rather than a call: pings may come by the hundred thousand).
_SKIPPED_NAMES = frozenset(
    space + name + end for space in (b"", b" ") for name in (b"", b"ping") for end in (b"", b"\r")
)


def stop_end(block: bytes) -> int | None:
    """Where the data of the message's ``message_stop`` ends in ``block``: the first event the SDKs read
    (not a ``ping``) whose data is a ``message_stop``. Only events that say ``message_stop`` are looked
    at, each once: the search moves past each event it has looked at."""
    position, event_start = 0, 0
    while (found := block.find(b"message_stop", position)) >= 0:
        blank = max(block.rfind(b"\n\n", event_start, found), block.rfind(b"\n\r\n", event_start, found))
        if blank >= 0:
            event_start = blank + (2 if block.startswith(b"\n\n", blank) else 3)
        ending = _BLANK_LINE.search(block, found)
        event_end = len(block) if ending is None else ending.start() + 1
        names = _EVENT_LINE.findall(block, event_start, event_end)
        if names and names[-1] not in _SKIPPED_NAMES:
            event = block[event_start:event_end]
            stop = search_data_lines(_TERMINAL, event)
            if stop is not None and _is_stop(event, stop.start()):
                return event_start + stop.end()
        position = event_start = event_end if ending is None else ending.end()
    return None


def event_data(block: bytes) -> Iterator[tuple[bytes | None, bytes]]:
    """Each ``data:`` line of the block with the name its event is handed on under (its last ``event:``
    line, wherever in the event), ``None`` when unnamed (or named ``""``); an ``error`` event ended
    without data, ``b""`` (the SDKs hand on a named event whatever its data, and raise on that name)."""
    name: bytes | None = None
    data: list[bytes] = []
    lines = block.split(b"\n")
    for number, line in enumerate(lines, 1):
        if line.startswith(b"data:"):
            data.append(line[5:])
        elif not line or line == b"\r":  # the blank line that ends an event (the block's last piece ends no line)
            if name == b"error" and not data and number < len(lines):
                data.append(b"")
            for value in data:
                yield name, value
            name, data = None, []
        elif line.startswith(b"event:") or line in (b"event", b"event\r"):
            name = event_name(line[6:]) or None  # an empty name is none, as the SDKs read it
    for value in data:
        yield name, value


def event_name(value: bytes) -> bytes:
    """An ``event:`` line's value as the SSE specification reads it: one leading space dropped, and the line's end."""
    value = value[1:] if value.startswith(b" ") else value
    return value[:-1] if value.endswith(b"\r") else value


def _is_stop(event: bytes, position: int) -> bool:
    """Whether the data line at ``position`` of ``event`` is a ``message_stop`` itself, not some event
    whose data holds one deeper down."""
    line_start = event.rfind(b"\n", 0, position) + 1
    line_end = event.find(b"\n", position)
    data = event[line_start + len(b"data:") : len(event) if line_end < 0 else line_end]
    if too_costly_to_decode(data):
        return True  # as the search said: such an event cannot be looked into
    decoded = decode_json(data)
    return isinstance(decoded, dict) and decoded.get("type") == "message_stop"
