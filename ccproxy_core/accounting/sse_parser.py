"""Incremental splitting of a server-sent-events byte stream into complete lines.

The proxy sees a stream as arbitrary chunks: an event, a line, even a multi-byte UTF-8
character or a ``\\r\\n`` pair may be cut anywhere. ``SSELineSplitter`` hands back only
whole lines and keeps nothing but the unfinished last line between chunks, so memory
stays bounded by one line whatever the stream's length.

Lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r``, as the SSE specification allows. Working
on bytes and cutting only at ``\\n`` (a byte that never occurs inside a multi-byte UTF-8
sequence) makes chunk boundaries harmless; a ``\\r`` left at the end of a line is whitespace
to the JSON decoder, so callers need not strip it. A lone ``\\r`` (used by no LLM provider,
but the SDKs read it) is turned into ``\\n`` first, minding a ``\\r\\n`` cut between chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

DEFAULT_MAX_LINE_BYTES = 16 << 20
"""An unfinished line longer than this (16 MiB) is dropped rather than buffered further.

A Responses stream's last event carries the whole response, a generated image included
(2 to 4 MB of base64 for one image), so lines of several MB are normal; a whole JSON answer
is held up to UPSTREAM__MAX_DECODED_BYTES (64 MiB) in the same way."""
_DATA_FIELD = b"data:"
_LONE_CR = re.compile(rb"\r(?!\n)")
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
DONE_LINE = re.compile(rb"(?:^|\n)data: ?\[DONE\]")
"""The ``data: [DONE]`` line, where the openai SDK stops reading any stream."""


class SSELineSplitter:
    """Turns chunks of an SSE stream into blocks of complete lines.

    ``feed(chunk)`` returns every line the chunk completed, as one ``bytes`` block that
    ends with ``\\n`` (``b""`` when the chunk completed no line). Returning one block
    rather than a list lets a caller test the whole block for an interesting marker with
    one C-speed ``in`` before looking at single lines.

    A line that grows beyond ``max_line_bytes`` without ending is dropped, up to and
    including its eventual ``\\n``; ``dropped_lines`` counts them (comments, which say nothing,
    aside). Splitting then goes on normally with the next line.

    One byte order mark at the very start of the stream is dropped, as the SSE specification says:
    before it, the first line was no ``data:`` line.
    """

    __slots__ = (
        "_head",
        "_pending",
        "_pending_bytes",
        "_max_line_bytes",
        "_skipping_long_line",
        "_ended_on_cr",
        "_skipped_line_counted",
        "_dropped_event_open",
        "dropped_lines",
        "dropped_ended_lines",
    )

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        # The unfinished line is kept as a list of pieces, so a long line arriving in
        # many small chunks costs linear, not quadratic, copying.
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._max_line_bytes = max_line_bytes
        self._skipping_long_line = False
        self._ended_on_cr = False
        self._skipped_line_counted = False
        self._dropped_event_open = False
        self.dropped_lines = 0
        self.dropped_ended_lines = 0
        """Dropped lines whose event a blank line then ended: the SDKs dispatch an event only there, so
        a line the stream stops inside, or whose event it stops inside, reached no client."""
        self._head: bytes | None = b""  # the stream's first bytes, until it is known whether they are a BOM

    @property
    def tail(self) -> bytes:
        """The unfinished last line seen so far (without any line end)."""
        return b"".join(self._pending)

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return the block of lines it completed (``b""`` if none)."""
        if self._head is not None:
            chunk = self._without_byte_order_mark(chunk)
        if chunk and (self._ended_on_cr or b"\r" in chunk):
            chunk = self._lone_cr_as_line_feed(chunk)
        if self._skipping_long_line:
            chunk = self._skip_rest_of_long_line(chunk)
        last_newline = chunk.rfind(b"\n")
        if last_newline < 0:
            self._add_to_pending(chunk)
            return b""
        # A full-length slice of bytes is the object itself: the usual chunk (whole
        # events, ending in a newline) is passed on without a copy.
        completed = chunk[: last_newline + 1]
        if self._pending:
            self._pending.append(completed)
            completed = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        if self._dropped_event_open and _holds_blank_line(completed):
            self._dropped_event_open = False
            self.dropped_ended_lines += 1
        self._add_to_pending(chunk[last_newline + 1 :])
        return completed

    def _without_byte_order_mark(self, chunk: bytes) -> bytes:
        head = self._head + chunk if self._head else chunk
        if len(head) < len(_BYTE_ORDER_MARK) and _BYTE_ORDER_MARK.startswith(head):
            self._head = head  # a BOM cut between chunks, or the stream's first bytes
            return b""
        self._head = None
        return head.removeprefix(_BYTE_ORDER_MARK)

    def _lone_cr_as_line_feed(self, chunk: bytes) -> bytes:
        # A chunk's last \r has already become \n when the next chunk starts with the \n of its pair.
        if self._ended_on_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._ended_on_cr = chunk.endswith(b"\r")
        return _LONE_CR.sub(b"\n", chunk) if _LONE_CR.search(chunk) else chunk

    def _add_to_pending(self, piece: bytes) -> None:
        if not piece:
            return
        self._pending_bytes += len(piece)
        if self._pending_bytes > self._max_line_bytes:
            comment = (self._pending[0] if self._pending else piece).startswith(b":")
            self._pending.clear()
            self._pending_bytes = 0
            self._skipping_long_line = True
            self._skipped_line_counted = not comment
            self.dropped_lines += 0 if comment else 1  # a comment says nothing: skipping it loses nothing
        else:
            self._pending.append(piece)

    def _skip_rest_of_long_line(self, chunk: bytes) -> bytes:
        newline = chunk.find(b"\n")
        if newline < 0:
            return b""
        self._skipping_long_line = False
        self._dropped_event_open = self._dropped_event_open or self._skipped_line_counted
        return chunk[newline + 1 :]


def _holds_blank_line(block: bytes) -> bool:
    """Whether a block of whole lines, which starts at a line's start, holds an empty line."""
    return block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block


class OpenEventName:
    """The ``event:`` line of the event a block of lines leaves open, to put before the next block.

    The rest of that event (its data, joined by :class:`DataJoiner`) comes with a later block, which
    must still show the event's name: the SDKs know an Anthropic event by it (a ``ping`` or an
    ``error`` whatever its data says), however the provider's bytes were cut into reads.
    """

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = b""
        """The name line (with its line end) of the event left open so far; empty when none is."""

    def carried_into(self, block: bytes) -> bytes:
        """The name line to put before the lines read from ``block``; remember the one ``block`` leaves open."""
        carried = self.line
        if block.endswith((b"\n\n", b"\n\r\n")):
            self.line = b""
            return carried
        ends = [end + 2 for end in (block.rfind(b"\n\n"),) if end >= 0]
        ends += [end + 3 for end in (block.rfind(b"\n\r\n"),) if end >= 0]
        ends += [len(start) for start in (b"\n", b"\r\n") if block.startswith(start)]
        names = _EVENT_NAME_LINE.findall(block, max(ends, default=0))
        if names:
            self.line = names[-1] + b"\n"
        elif ends:  # every event the block began has ended, and the new one has no name yet
            self.line = b""
        return carried


_EVENT_NAME_LINE = re.compile(rb"(?m)^event(?::[^\n]*|\r?$)")  # "event" alone names an event "" (unnamed)


def search_data_lines(pattern: re.Pattern[bytes], block: bytes) -> re.Match[bytes] | None:
    """The first match of ``pattern`` in ``block`` that lies on a ``data:`` line: a comment or another
    field saying the same words is no event. Each byte is looked at once, however many matches."""
    line_start, searched_to = 0, 0
    for match in pattern.finditer(block):
        newline = block.rfind(b"\n", searched_to, match.start())
        if newline >= 0:
            line_start = newline + 1
        if block.startswith(_DATA_FIELD, line_start):
            return match
        searched_to = match.start()
    return None


def through_event(block: bytes, position: int) -> bytes:
    """``block`` up to the end of the event that holds ``position`` (its blank line included): what follows
    the stream's last event is not read. The whole block when that event does not end in it."""
    ends = [end for end in (block.find(b"\n\n", position), block.find(b"\n\r\n", position)) if end >= 0]
    if not ends:
        return block
    end = min(ends)
    return block[: end + (2 if block.startswith(b"\n\n", end) else 3)]


def iter_data_fields(block: bytes) -> Iterator[bytes]:
    """Yield the value of each ``data:`` line in a block of complete lines.

    The value keeps any trailing ``\\r`` and the optional space after the colon; both
    are whitespace to ``json.loads``.
    """
    for line in block.split(b"\n"):
        if line.startswith(_DATA_FIELD):
            yield line[len(_DATA_FIELD) :]


class DataJoiner:
    """Gives each event's data as one ``data:`` line, however many lines and blocks it came in.

    SSE joins the ``data:`` lines of one event, and ignores the comments and other fields
    (``id:``, ``retry:``) between them; no provider sends more than one, but a stream that does
    is still valid. Here they are joined with a carriage return, which keeps the joined data one
    line and is to a JSON decoder what the specification's newline is: whitespace between tokens,
    and an error inside a string (where the SDKs fail on such an event too). An event's data waits for the
    blank line that ends it, across blocks, in pieces. Lines are found by regular expressions,
    never looped over one by one: a block of a million comment lines or one-line events costs
    what scanning its bytes costs. An event whose data grows beyond ``max_bytes`` while it waits
    is dropped; ``dropped_events`` counts them.
    """

    __slots__ = ("_pieces", "_size", "_max_bytes", "_dropping", "dropped_events")

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._max_bytes = max_bytes
        self._dropping = False
        self.dropped_events = 0

    @property
    def inside_event(self) -> bool:
        """Whether an event's data lines have begun and no blank line has ended it yet."""
        return bool(self._pieces) or self._dropping

    def join(self, block: bytes) -> bytes:
        """``block`` (complete lines) with each ended event's data in one line; the data of the event
        the block leaves open is kept for the next block (its other lines are not needed)."""
        opened = b""
        if self.inside_event:  # the block first finishes the event the last one left open
            end = _first_blank_line(block)
            finishing = block if end is None else block[:end]
            self._add(_DATA_VALUES.findall(finishing))
            if end is None:
                return b""
            opened = self._joined(self._pieces) + b"\n" if self._pieces else b""
            if opened and (names := _EVENT_NAME_LINE.findall(finishing)):
                opened = names[-1] + b"\n" + opened  # an event's name may follow its data: its last one counts
            self._pieces, self._size, self._dropping = [], 0, False
            block = block[end:]
        last = _after_last_blank_line(block)
        open_values = _DATA_VALUES.findall(block, last)
        if open_values:
            self._add(open_values)
            block = block[:last]
        if block.count(_DATA_FIELD) > 1:
            block = _SEVERAL_DATA_LINES.sub(_joined_event, block)
        return opened + block

    def leftover(self, last_line: bytes) -> bytes:
        """The open event's data with ``last_line`` (a stream's unfinished last line), as lines."""
        pieces, lines = self._pieces, []
        if last_line.startswith(_DATA_FIELD):
            pieces = [*pieces, *_DATA_VALUES.findall(last_line)]
        elif last_line:
            lines.append(last_line)
        if pieces:
            lines.insert(0, self._joined(pieces))
        return b"".join(line + b"\n" for line in lines)

    def _add(self, values: list[bytes]) -> None:
        if self._dropping or not values:
            return
        self._size += sum(len(value) + 1 for value in values)
        if self._size > self._max_bytes:
            self._pieces, self._size, self._dropping = [], 0, True
            self.dropped_events += 1
        else:
            self._pieces += values

    @property
    def dropped_ended_events(self) -> int:
        """Dropped events that a blank line ended: one the stream stops inside reaches no reader."""
        return self.dropped_events - self._dropping

    @staticmethod
    def _joined(pieces: list[bytes]) -> bytes:
        return b"data: " + b"\r".join(pieces)


# A data field's value: what follows "data:" and its one optional space, up to the line end.
_DATA_VALUES = re.compile(rb"^data: ?([^\r\n]*)", re.MULTILINE)
# An event's lines from its first data line on, when it has another data line before its blank line.
_SEVERAL_DATA_LINES = re.compile(
    rb"^data:[^\n]*\n(?:(?!\r?\n)[^\n]*\n)*?data:[^\n]*\n(?:(?!\r?\n)[^\n]*\n)*", re.MULTILINE
)
_OTHER_LINES = re.compile(rb"^(?!data:)[^\n]*\n", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\n\r?\n")


def _joined_event(match: re.Match[bytes]) -> bytes:
    lines = match.group()
    data = b"data: " + b"\r".join(_DATA_VALUES.findall(lines)) + b"\n"
    return b"".join(_OTHER_LINES.findall(lines)) + data


def _first_blank_line(block: bytes) -> int | None:
    """Where the block's first empty line starts, or ``None``."""
    if block.startswith((b"\n", b"\r\n")):
        return 0
    blank = _BLANK_LINE.search(block)
    return None if blank is None else blank.start() + 1


def _after_last_blank_line(block: bytes) -> int:
    """Where the lines after the block's last empty line start (0 when it has none)."""
    lf, crlf = block.rfind(b"\n\n"), block.rfind(b"\n\r\n")
    end = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
    if end == 0 and block.startswith((b"\n", b"\r\n")):  # its first line is its only empty one
        end = 1 if block.startswith(b"\n") else 2
    return end
