"""Whether a stream carries an event whose data its client's SDK decodes and cannot.

The SDKs decode the data of every event they hand on as JSON and raise on data that is not
(Anthropic's skip unnamed events, ``ping`` and empty data, and raise on ``error`` by its name;
OpenAI's decode every event but ``[DONE]``). ccproxy reads only the events that carry usage, so a
broken content delta would leave a success on record where the client got an exception. Checking
every event would cost a JSON decode each; nearly every event is one ``data:`` line ending in ``}``,
so a block is looked at closely only when it holds a ``data:`` line that does not end so, a line other
than a data line, an event name or a blank line (which may end in ``}`` too), or a carriage return not
ending a line (the data of several lines are joined by one: they may end in ``}`` and be cut inside a
string all the same).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ccproxy_core.json_text import decode_json

if TYPE_CHECKING:
    from ccproxy_core.providers.base import StreamReader

_EVENT_END = re.compile(rb"\r?\n\r?\n")


def may_hold_undecodable_data(block: bytes) -> bool:
    """A cheap first look: whether some ``data:`` line of ``block`` may not end a JSON object, or some other
    line than a data line, an event name or a blank line (a comment, an ``id:``; either may end in ``}``)
    is there. Events of one data line ending in ``}`` and perhaps a name, each ended by a blank line, have
    two line ends for each data line and one for each name."""
    if 13 in block:  # a carriage return (an int is looked for some eight times faster than b"\r")
        if block.count(b"\r") != block.count(b"\r\n"):  # a lone one: data lines joined, perhaps inside a string
            return True
        data_end = b"}\r\n\r\n"
    else:
        data_end = b"}\n\n"
    data = block.count(b"data:")
    return data != block.count(data_end) or block.count(b"\n") != 2 * data + block.count(b"event:")


def holds_undecodable_data(block: bytes, reader: StreamReader) -> bool:
    """Whether an event of ``block`` ended by its blank line, not one the ``reader``'s provider's SDKs skip
    (:attr:`~StreamReader.skipped_names`, empty data where they skip it), carries data (its ``data:`` lines
    joined) that is not JSON; nothing after ``[DONE]`` is looked at where the SDKs stop at it (OpenAI's)."""
    for name, data in _ended_events(block):
        if reader.sdk_stops_at_done and data.startswith(b"[DONE]"):
            return False
        if name in reader.skipped_names or (not data and reader.sdk_skips_empty_data):
            continue
        if decode_json(data) is None and data.strip() != b"null":
            return True
    return False


def _ended_events(block: bytes) -> Iterator[tuple[bytes | None, bytes]]:
    """Each event that a blank line ends in ``block``: its name (its last ``event:`` line) and its data."""
    *ended, _rest = _EVENT_END.split(block)
    for event in ended:
        name: bytes | None = None
        data: list[bytes] = []
        for raw_line in event.split(b"\n"):
            field, _, value = raw_line.removesuffix(b"\r").partition(b":")
            value = value.removeprefix(b" ")
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value or None
        if data or name is not None:  # a comment alone (a keep-alive) is no event: no SDK hands it on
            yield name, b"\n".join(data)
