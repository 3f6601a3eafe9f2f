"""Decoding compressed answers on the side: exact in any chunking, bounded against bombs."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from ccproxy_core.forwarding.decoding import STEP_BYTES, DecodingFailed, decoder_for

ANSWER = b'{"type":"message","usage":{"input_tokens":10,"output_tokens":60}}' * 300

COMPRESSORS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("encoding", COMPRESSORS)
@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
def test_any_chunking_decodes_to_the_same_bytes(encoding, chunk_size):
    compressed = COMPRESSORS[encoding](ANSWER)
    decoder = decoder_for(encoding, 1 << 20)
    decoded = b"".join(decoder.decode(compressed[i : i + chunk_size]) for i in range(0, len(compressed), chunk_size))
    assert decoded == ANSWER and not decoder.over_limit


def test_raw_deflate_without_the_zlib_header_is_read_too():
    raw = zlib.compressobj(wbits=-15)
    compressed = raw.compress(ANSWER) + raw.flush()
    assert decoder_for("deflate", 1 << 20).decode(compressed) == ANSWER


@pytest.mark.parametrize("encoding", COMPRESSORS)
def test_a_bomb_stops_at_the_limit_without_inflating_it(encoding):
    bomb = COMPRESSORS[encoding](b"\0" * (64 << 20))  # 64 MiB of zeros, a few KiB compressed
    decoder = decoder_for(encoding, 1 << 20)
    produced = sum(len(decoder.decode(bomb[i : i + 65536])) for i in range(0, len(bomb), 65536))
    assert decoder.over_limit and produced <= 1 << 20
    # One step never decodes much more than the limit: the bound holds inside a chunk too.
    assert decoder.decoded_bytes <= (1 << 20) + (4 << 20)


@pytest.mark.parametrize("encoding", COMPRESSORS)
def test_data_that_is_not_of_its_encoding_fails_cleanly(encoding):
    with pytest.raises(DecodingFailed):
        decoder = decoder_for(encoding, 1 << 20)
        decoder.decode(b"this is not compressed data at all, not even close" * 3)
        decoder.decode(b"\xff" * 64)


@pytest.mark.parametrize("encoding", ["", "identity", None])
def test_identity_needs_no_decoder(encoding):
    assert decoder_for(encoding, 1024) is None


def test_an_unknown_encoding_beside_a_known_one_or_too_many_in_a_row_are_refused():
    for encoding in ("gzip, x-foo", "compress, br", "gzip, gzip, gzip, gzip, gzip, gzip"):
        with pytest.raises(DecodingFailed):
            decoder_for(encoding, 1024)


@pytest.mark.parametrize("encoding", ["none", "UTF-8", "compress", "none, identity"])
def test_codings_no_client_undoes_leave_the_body_as_it_came(encoding):
    assert decoder_for(encoding, 1024) is None


@pytest.mark.parametrize("encoding", COMPRESSORS)
def test_a_large_answer_in_one_chunk_decodes_whole(encoding):
    # brotli's decoder once gave 64 to 98 KiB of a chunk and held the rest back for good.
    answer = b"".join(b'{"index":%d,"text":"some words of an answer"}\n' % i for i in range(10_000))
    compressed = COMPRESSORS[encoding](answer)
    decoder = decoder_for(encoding, 1 << 22)
    assert decoder.decode(compressed) == answer and not decoder.over_limit


@pytest.mark.parametrize("chunk_size", [1, 4096, 1 << 20])
def test_codings_applied_one_after_another_are_undone_in_reverse(chunk_size):
    compressed = brotli.compress(gzip.compress(ANSWER))  # "gzip, br": gzip first, then brotli
    decoder = decoder_for("gzip, br", 1 << 20)
    decoded = b"".join(decoder.decode(compressed[i : i + chunk_size]) for i in range(0, len(compressed), chunk_size))
    assert decoded == ANSWER


def test_codings_in_a_row_stop_at_the_limit():
    bomb = gzip.compress(gzip.compress(b"\0" * (16 << 20)))
    decoder = decoder_for("gzip, gzip", 1 << 20)
    produced = sum(len(decoder.decode(bomb[i : i + 4096])) for i in range(0, len(bomb), 4096))
    assert decoder.over_limit and produced <= 1 << 20


@pytest.mark.timeout(20)
@pytest.mark.parametrize("after", [b"junk", gzip.compress(b"a second member")])
@pytest.mark.parametrize("chunk_size", [7, 4096, 1 << 20])
def test_bytes_after_a_gzip_stream_end_it_whatever_was_decoded_before(after, chunk_size):
    # Once past 64 KiB of output, a bounded step at the stream's end left the bytes after it "unread" for ever:
    # the decoder spun at full CPU. The SDKs' decoders read the first member only, as this one does.
    body = gzip.compress(b"a" * 70_000) + after
    decoder = decoder_for("gzip", 64 << 20)
    decoded = b"".join(decoder.decode(body[i : i + chunk_size]) for i in range(0, len(body), chunk_size))
    assert decoded == b"a" * 70_000 and decoder.finished and decoder.bytes_after_end


@pytest.mark.parametrize("first", [1, 2])
def test_raw_deflate_is_told_from_zlib_however_few_bytes_come_first(first):
    raw = zlib.compressobj(wbits=-15)
    compressed = raw.compress(ANSWER) + raw.flush()
    decoder = decoder_for("deflate", 1 << 20)
    decoded = decoder.decode(compressed[:first]) + decoder.decode(compressed[first:])
    assert decoded == ANSWER and decoder.finished


@pytest.mark.parametrize("encoding", COMPRESSORS)
def test_a_chunk_standing_for_megabytes_is_decoded_a_step_at_a_time(encoding):
    # Before, one call decoded all of it (up to the 64 MiB limit) while the event loop waited: a 1.6 KB
    # brotli chunk held every other request for 0.2 to 0.3 s.
    answer = b"".join(b'data: {"index":%d}\n\n' % i for i in range(400_000))  # some 8 MB
    decoder = decoder_for(encoding, 1 << 24)
    steps = [decoder.decode_step(COMPRESSORS[encoding](answer))]
    while decoder.pending:
        steps.append(decoder.decode_step(b""))
    assert b"".join(steps) == answer and not decoder.over_limit
    assert len(steps) > len(answer) // (2 * STEP_BYTES)
    assert max(len(step) for step in steps) <= STEP_BYTES + 64 * 1024


@pytest.mark.parametrize("encoding", COMPRESSORS)
def test_steps_stop_at_the_limit_as_a_whole_decode_does(encoding):
    bomb = COMPRESSORS[encoding](b"\0" * (8 << 20))
    decoder = decoder_for(encoding, 1 << 20)
    decoded = decoder.decode_step(bomb)
    while decoder.pending and not decoder.over_limit:
        decoded += decoder.decode_step(b"")
    assert decoder.over_limit and len(decoded) <= 1 << 20


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("gzip\x00", "as it came"),  # no coding any client knows: the body is read as it came
        ("g\u00fczip", "as it came"),
        ("\x1b[31mbr", "as it came"),
        (" , ,, identity ,", "as it came"),
        ("x" * 100_000, "as it came"),
        ("gzip, " * 1000, "refused"),  # 1,000 codings in a row
        ("GZIP,\tBR", "decoded"),
    ],
    ids=range(7),
)
def test_a_hostile_content_encoding_is_read_as_it_came_refused_or_decoded(encoding, expected):
    if expected == "refused":
        with pytest.raises(DecodingFailed, match="content-encodings in a row"):
            decoder_for(encoding, 1024)
        return
    decoder = decoder_for(encoding, 1 << 20)
    if expected == "as it came":
        assert decoder is None
    else:
        assert decoder.decode(brotli.compress(gzip.compress(ANSWER))) == ANSWER


def test_raw_deflate_whose_last_output_waits_at_a_steps_bound_is_decoded_to_its_end():
    # A raw deflate body (no trailer after it) whose output passes 64 KiB by a few bytes, ending in a
    # back-reference: zlib has taken all the input but still holds output when the bound is reached.
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    for size in range(65_570, 65_590):
        body = b": " + b"a" * (size - 2 - 2 * len(stop)) + 2 * stop
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        encoded = packer.compress(body) + packer.flush()
        decoder = decoder_for("deflate", 1 << 20)
        assert decoder.decode(encoded) == body, size  # before: the last 38 or more bytes were never seen


@pytest.mark.parametrize("codings", ["gzip, gzip", "br, gzip", "gzip, br, zstd"])
def test_a_chunk_of_stacked_codings_is_decoded_a_step_at_a_time_too(codings):
    body = (b": " + b"x" * 1022 + b"\n") * 8 * 1024 + b"data: {}\n\n"  # 8 MiB of SSE comments
    encoders = {"gzip": gzip.compress, "br": brotli.compress, "zstd": zstandard.ZstdCompressor().compress}
    chunk = body
    for coding in codings.split(", "):
        chunk = encoders[coding](chunk)
    decoder = decoder_for(codings, 64 * 1024 * 1024)
    steps = [decoder.decode_step(chunk)]
    while decoder.pending:
        steps.append(decoder.decode_step(b""))
    assert b"".join(steps) == body and decoder.finished
    assert max(map(len, steps)) <= 2 * STEP_BYTES  # before: one step of 8 MiB, the event loop held meanwhile


def zstd_frames(data: bytes, size: int) -> bytes:
    """``data`` as one zstd frame for every ``size`` bytes, a skippable frame (RFC 8878, 3.1.2) after each."""
    skippable = b"\x5e\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    return b"".join(compressor.compress(data[i : i + size]) + skippable for i in range(0, len(data), size))


@pytest.mark.parametrize("chunk_size", [1, 5, 128, 4096, 1 << 20])
def test_zstd_frames_one_after_another_decode_in_any_chunking(chunk_size):
    compressed = zstd_frames(ANSWER, 100)
    decoder = decoder_for("zstd", 1 << 20)
    decoded = b"".join(decoder.decode(compressed[i : i + chunk_size]) for i in range(0, len(compressed), chunk_size))
    assert decoded == ANSWER and decoder.finished and not decoder.cut_mid_frame


@pytest.mark.parametrize("cut", [1, 4, 20])
def test_zstd_data_ending_inside_a_frame_is_cut_mid_frame(cut):
    compressed = zstandard.ZstdCompressor(write_checksum=True).compress(ANSWER)
    decoder = decoder_for("zstd, gzip", 1 << 20)  # zstd applied first, then gzip
    decoder.decode(gzip.compress(compressed[:-cut]))
    assert decoder.cut_mid_frame and not decoder.finished


def test_no_zstd_data_at_all_is_no_cut_frame_and_gzip_never_is():
    assert not decoder_for("zstd", 1024).cut_mid_frame
    gzip_decoder = decoder_for("gzip", 1 << 20)
    gzip_decoder.decode(gzip.compress(ANSWER)[:-8])  # its trailer missing: httpx reads it without a word
    assert not gzip_decoder.cut_mid_frame and not gzip_decoder.finished


def test_many_small_zstd_frames_stop_at_the_limit():
    bomb = zstd_frames(b"\0" * (16 << 20), 128 * 1024)  # 128 frames of 128 KiB of zeros
    decoder = decoder_for("zstd", 1 << 20)
    produced = sum(len(decoder.decode(bomb[i : i + 65536])) for i in range(0, len(bomb), 65536))
    assert decoder.over_limit and produced <= 1 << 20 and decoder.decoded_bytes <= (1 << 20) + (4 << 20)
