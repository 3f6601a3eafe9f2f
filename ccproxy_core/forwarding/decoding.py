"""Decompressing an answer or a request body on the side, for reading only, never more than a set size.

The client gets the provider's bytes unchanged, with their ``Content-Encoding``, and the
provider the client's; ccproxy decodes a copy to read usage and errors (the request's model
and attribution). A compressed body is hostile input as much as
any other: a few kilobytes of gzip, brotli or zstd can stand for gigabytes, so every
decoder here stops at ``limit`` decoded bytes (``UPSTREAM__MAX_DECODED_BYTES``) and keeps
no more than one step's output in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import brotli
import zstandard

_STEP = 64 * 1024
"""Largest output asked of a decoder in one call."""
STEP_BYTES = 256 * 1024
"""Output after which a step stops (the last call may add up to :data:`_STEP` more)."""
_ZLIB_INPUT_SLICE = 16 * 1024
"""gzip and deflate input handed to zlib at once (one byte of it stands for 1,032 decoded at most)."""
_ZSTD_INPUT_SLICE = 128
"""zstandard's streaming decoder has no output bound, so it is fed this many input bytes at a
time: one compressed zstd byte yields at most ~32 KiB (a 128 KiB block from a 4-byte header)."""


class DecodingFailed(Exception):
    """The body is not valid data of its declared encoding."""

    error_type = "upstream_invalid_encoding"
    """The record's error for a corrupt answer: its client cannot read it either (the SDKs raise)."""

    def describe(self) -> str:
        """The record's error message."""
        return f"the answer is not valid data of its content-encoding: {self}"


class BodyDecoder:
    """Decodes one answer's chunks in order; ``over_limit`` says when decoding stopped at ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.decoded_bytes = 0
        self.over_limit = False
        self.pending = False
        """A step stopped with more of its chunk to decode: :meth:`decode_step` with ``b""`` goes on."""

    def decode(self, chunk: bytes) -> bytes:
        """The decoded bytes ``chunk`` completes (``b""`` once over the limit)."""
        pieces = [self.decode_step(chunk)]
        while self.pending and not self.over_limit:
            pieces.append(self.decode_step(b""))
        return b"".join(pieces)

    def decode_step(self, chunk: bytes) -> bytes:
        """Some of the decoded bytes ``chunk`` completes, about :data:`STEP_BYTES` at most (``pending`` then
        says whether more is held), so that a chunk standing for megabytes is decoded a step at a time."""
        if self.over_limit or not (chunk or self.pending):
            return b""
        try:
            out = self._decode(chunk)
        except (zlib.error, brotli.error, zstandard.ZstdError) as exc:
            raise DecodingFailed(str(exc)) from None
        return self._count(out)

    _held: bytes | memoryview = b""
    """Input a step stopped before (the zlib and zstd decoders'; brotli holds its own)."""

    def _resumed(self, chunk: bytes) -> bytes | memoryview:
        """The input a step stopped before, then ``chunk`` (empty while steps go on: a copy only otherwise)."""
        held, self._held, self.pending = self._held, b"", False
        return held if not chunk else bytes(held) + chunk

    def _count(self, out: bytes) -> bytes:
        self.decoded_bytes += len(out)
        if self.decoded_bytes > self.limit:
            self.over_limit = True
            return b""
        return out

    @property
    def finished(self) -> bool:
        """Whether the data decoded so far ended its encoding's stream (a whole body that did not is cut or not of it)."""
        return True

    @property
    def bytes_after_end(self) -> bool:
        """Whether bytes came after the encoded stream's end (a decoder that cannot tell says no)."""
        return False

    @property
    def cut_mid_frame(self) -> bool:
        """Whether the data decoded so far ends inside a zstd frame. The SDKs' httpx refuses such an answer at
        its end ("Zstandard data is incomplete"), though not a gzip, deflate or brotli one cut short."""
        return False

    expands_boundedly = False
    """Whether its output is at most some 1,000 times its input (deflate's bound): brotli's and zstd's
    have none (300 bytes of brotli stand for gigabytes), so a small body is no sign of a cheap decode."""

    def _room(self) -> int:
        return max(1, min(_STEP, self.limit - self.decoded_bytes + 1))

    def _decode(self, chunk: bytes) -> bytes:
        raise NotImplementedError


class _ZlibDecoder(BodyDecoder):
    """gzip (``wbits`` 31) or zlib-wrapped deflate (15); a raw deflate stream is tried when zlib's header is missing."""

    expands_boundedly = True

    def __init__(self, limit: int, wbits: int) -> None:
        super().__init__(limit)
        self._wbits = wbits
        self._decoder = zlib.decompressobj(wbits)
        self._started = False
        self._head = b""
        """A deflate body's first byte, held until the second tells a zlib header from raw deflate."""
        self._after_end = False

    def _decode(self, chunk: bytes) -> bytes:
        if self.pending:
            return self._bounded(self._resumed(chunk))
        if not self._started and self._wbits == 15:
            chunk, self._head = self._head + chunk, b""
            if len(chunk) < 2:
                self._head = chunk
                return b""
            self._started = True
            try:
                return self._bounded(chunk)
            except zlib.error:
                # "deflate" is often sent as a raw deflate stream, without the zlib header.
                self._decoder = zlib.decompressobj(-15)
        return self._bounded(chunk)

    @property
    def finished(self) -> bool:
        return self._decoder.eof

    @property
    def bytes_after_end(self) -> bool:
        return self._after_end or bool(self._decoder.unused_data)

    def _bounded(self, data: bytes | memoryview) -> bytes:
        pieces, size = [], 0
        data = memoryview(data)  # sliced without copies, and what a step leaves held so
        # Fed a slice at a time: each bounded step copies what it left unread, and a small input can
        # stand for much output (a 10 MB chunk held whole was copied once for every 64 KiB decoded).
        # No input at all is still one slice: output zlib held back at the last step's bound is asked for.
        for start in range(0, max(len(data), 1), _ZLIB_INPUT_SLICE):
            tail: bytes | memoryview = data[start : start + _ZLIB_INPUT_SLICE]
            # Past the stream's end zlib hands the rest back as unread however often it is asked:
            # it is bytes after the end (a second gzip member, which the SDKs' decoders do not read either).
            while not self._decoder.eof and size <= self.limit - self.decoded_bytes:
                room = self._room()
                piece = self._decoder.decompress(tail, room)
                pieces.append(piece)
                size += len(piece)
                tail = self._decoder.unconsumed_tail
                if not tail and len(piece) < room:  # all input taken, and no output held back for want of room
                    break
                if size >= STEP_BYTES and not self._decoder.eof:  # the rest in the next step
                    # What zlib left unread of the slice is its end: the rest of the input runs on from there.
                    end = min(start + _ZLIB_INPUT_SLICE, len(data))
                    self._held, self.pending = data[end - len(tail) :], True
                    return b"".join(pieces)
            if self._decoder.eof:
                self._after_end = self._after_end or bool(tail) or start + _ZLIB_INPUT_SLICE < len(data)
                break
            if size > self.limit - self.decoded_bytes:
                break
        return b"".join(pieces)


class _BrotliDecoder(BodyDecoder):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._decoder = brotli.Decompressor()

    @property
    def finished(self) -> bool:
        return bool(self._decoder.is_finished())

    def _decode(self, chunk: bytes) -> bytes:
        self.pending = False  # what a step left is held by brotli itself: asked for with no input
        pieces = [self._decoder.process(chunk, output_buffer_limit=self._room())]
        size = len(pieces[0])
        # Output held back by the bound is asked for until none comes: can_accept_more_data() may already
        # be true while some is held (brotli 1.2), which once left all but the first 64 to 98 KiB unread.
        while pieces[-1] and not self._decoder.is_finished() and size <= self.limit - self.decoded_bytes:
            if size >= STEP_BYTES:
                self.pending = True
                break
            pieces.append(self._decoder.process(b"", output_buffer_limit=self._room()))
            size += len(pieces[-1])
        return b"".join(pieces)


class _ZstdDecoder(BodyDecoder):
    """zstd frames one after another (skippable ones too), each read by a decoder of its own, as the SDKs' httpx reads them."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        # One context for every frame: a new one costs some 17 µs, 50 times a frame's own decoder, and a
        # provider may send 7,000 empty frames in 64 KiB.
        self._context = zstandard.ZstdDecompressor(max_window_size=1 << 23)
        self._decoder = self._context.decompressobj()
        self._seen = False

    @property
    def finished(self) -> bool:
        return not self._seen or self._decoder.eof

    @property
    def cut_mid_frame(self) -> bool:
        return not self.finished

    def _decode(self, chunk: bytes) -> bytes:
        data = memoryview(self._resumed(chunk) if self.pending else chunk)
        self._seen = self._seen or len(data) > 0
        pieces, size = [], 0
        for start in range(0, len(data), _ZSTD_INPUT_SLICE):
            piece = self._frames(data[start : start + _ZSTD_INPUT_SLICE])
            pieces.append(piece)
            size += len(piece)
            if size > self.limit - self.decoded_bytes:
                break
            if size >= STEP_BYTES and start + _ZSTD_INPUT_SLICE < len(data):  # the rest in the next step
                self._held, self.pending = data[start + _ZSTD_INPUT_SLICE :], True
                break
        return b"".join(pieces)

    def _frames(self, data: bytes | memoryview) -> bytes:
        """What ``data`` decodes to, a new frame begun wherever one ends (within ``data``, or before it)."""
        pieces = []
        while True:
            if self._decoder.eof:  # a frame's decoder takes no more input after its end
                data, self._decoder = self._decoder.unused_data + bytes(data), self._context.decompressobj()
            pieces.append(self._decoder.decompress(data))
            if not (self._decoder.eof and self._decoder.unused_data):
                return b"".join(pieces)
            data = b""


class _StackedDecoder(BodyDecoder):
    """Codings applied one after another (``gzip, br``), undone in the reverse order, each within ``limit``."""

    def __init__(self, limit: int, decoders: list[BodyDecoder]) -> None:
        super().__init__(limit)
        self._decoders = decoders

    @property
    def finished(self) -> bool:
        return all(decoder.finished for decoder in self._decoders)

    @property
    def bytes_after_end(self) -> bool:
        return any(decoder.bytes_after_end for decoder in self._decoders)

    @property
    def cut_mid_frame(self) -> bool:
        return any(decoder.cut_mid_frame for decoder in self._decoders)

    def _decode(self, chunk: bytes) -> bytes:
        # A step at a time too: the last decoder still holding output goes on, and takes new input (from
        # the one before it, or the chunk) only once it holds none, so no decoder's input piles up.
        first = next((index for index in reversed(range(len(self._decoders))) if self._decoders[index].pending), 0)
        for decoder in self._decoders[first:]:
            chunk = decoder.decode_step(chunk)
            if decoder.over_limit:
                self.over_limit = True
                return b""
        self.pending = any(decoder.pending for decoder in self._decoders)
        return chunk


MAX_STACKED_CODINGS = 5
"""Codings read one after another in an answer's ``Content-Encoding``; a longer list is not read (the SDKs'
httpx and Node's fetch refuse more than five too)."""
_READ_CODINGS = frozenset(("gzip", "x-gzip", "deflate", "br", "zstd"))


def decoder_for(content_encoding: str | None, limit: int) -> BodyDecoder | None:
    """A decoder for a ``Content-Encoding`` value (its lines joined by :func:`joined_codings`); ``None`` for
    an identity (uncompressed) body, and for one that names only codings no client undoes (``none``,
    ``utf-8``: the SDKs' httpx skips them, aiohttp and Node's fetch read such a body as it came).

    Raises :class:`DecodingFailed` for an encoding ccproxy cannot read (the answer still
    passes through unchanged; only its usage is lost).
    """
    codings = [coding.strip().lower() for coding in (content_encoding or "").split(",")]
    codings = [coding for coding in codings if coding not in ("", "identity")]
    if _READ_CODINGS.isdisjoint(codings):
        return None
    if len(codings) > MAX_STACKED_CODINGS:
        raise DecodingFailed(f"{len(codings)} content-encodings in a row (ccproxy reads {MAX_STACKED_CODINGS} at most)")
    decoders = [_decoder_of(coding, limit) for coding in reversed(codings)]  # the last applied is undone first
    return decoders[0] if len(decoders) == 1 else _StackedDecoder(limit, decoders)


def joined_codings(lines: Iterable[str]) -> str | None:
    """The ``Content-Encoding`` header lines of one message as one value: given on several lines, the codings
    are the lines' lists one after another (RFC 9110, section 5.3), as the SDKs' httpx reads them."""
    lines = list(lines)
    return ", ".join(lines) if lines else None


def _decoder_of(encoding: str, limit: int) -> BodyDecoder:
    if encoding in ("gzip", "x-gzip"):
        return _ZlibDecoder(limit, 31)
    if encoding == "deflate":
        return _ZlibDecoder(limit, 15)
    if encoding == "br":
        return _BrotliDecoder(limit)
    if encoding == "zstd":
        return _ZstdDecoder(limit)
    raise DecodingFailed(f"unsupported content-encoding {encoding!r}")


def is_encoded(content_encoding: str | None) -> bool:
    """Whether a ``Content-Encoding`` value names a coding (not nothing, not ``identity`` alone)."""
    return content_encoding is not None and content_encoding.strip().lower() not in ("", "identity")


def decode_whole(body: bytes | bytearray, content_encoding: str, limit: int, exact: bool = False) -> bytes | None:
    """``body`` decoded as its ``Content-Encoding`` says; ``None`` when ccproxy cannot read that encoding,
    the body is not valid data of it (or ends before its encoding's end, or, ``exact``, has bytes after
    it), or it decodes to more than ``limit`` bytes."""
    try:
        decoder = decoder_for(content_encoding, limit)
        if decoder is None:
            return bytes(body)
        decoded = decoder.decode(bytes(body))
    except DecodingFailed:
        return None
    if decoder.over_limit or not decoder.finished or (exact and decoder.bytes_after_end):
        return None
    return decoded
