"""Compressing the mock's answers as providers may (``x-mock-content-encoding``), streams included.

A stream is compressed incrementally and flushed after every piece, so each event still
arrives when it is sent, as from a provider behind a compressing front end.
"""

from __future__ import annotations

import zlib

import brotli
import zstandard

ENCODINGS = ("gzip", "deflate", "br", "zstd")


class Compressor:
    """Compresses one answer piece by piece; :meth:`finish` gives the closing bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            self._zlib = zlib.compressobj(wbits=31)
        elif encoding == "deflate":
            self._zlib = zlib.compressobj(wbits=15)
        elif encoding == "br":
            self._brotli = brotli.Compressor()
        elif encoding == "zstd":
            self._zstd = zstandard.ZstdCompressor().compressobj()
        else:
            raise ValueError(f"must be one of {', '.join(ENCODINGS)}, got {encoding!r}")

    def piece(self, data: bytes) -> bytes:
        """``data`` compressed and flushed, so the receiver can decode it at once."""
        if self.encoding in ("gzip", "deflate"):
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self.encoding == "br":
            return self._brotli.process(data) + self._brotli.flush()
        return self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        if self.encoding in ("gzip", "deflate"):
            return self._zlib.flush()
        if self.encoding == "br":
            return self._brotli.finish()
        return self._zstd.flush()


def compress_whole(encoding: str, data: bytes) -> bytes:
    compressor = Compressor(encoding)
    return compressor.piece(data) + compressor.finish()
