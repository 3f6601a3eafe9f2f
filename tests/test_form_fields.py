"""The model and stream fields of multipart uploads, as the openai SDK (through httpx) writes them,
read with the boundary the content type names, as the provider reads them (RFC 2046)."""

from __future__ import annotations

import httpx
import pytest

from ccproxy_core.forwarding.form_boundary import form_boundary
from ccproxy_core.forwarding.form_fields import MAX_PARTS, form_model_and_stream, query_names_a_field


def form(data: dict, files: dict) -> tuple[bytes, bytes]:
    request = httpx.Request("POST", "http://provider/v1/audio/transcriptions", data=data, files=files)
    boundary = form_boundary(request.headers["content-type"])
    assert boundary is not None
    return request.read(), boundary


def field(boundary: bytes, name: bytes, value: bytes) -> bytes:
    return b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"


def test_the_fields_beside_a_file_are_read():
    body, boundary = form({"model": "gpt-4o-transcribe", "stream": "true"}, {"file": ("a.wav", b"RIFF" * 1000)})
    assert form_model_and_stream(body, boundary) == ("gpt-4o-transcribe", True)


def test_fields_after_the_file_are_read_and_the_files_own_bytes_are_not():
    fake_part = b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nforged-model\r\n'
    body, boundary = form({}, {"file": ("a.wav", fake_part * 50), "model": (None, b"gpt-image-1")})
    assert form_model_and_stream(body, boundary) == ("gpt-image-1", False)


def test_a_preamble_shaped_like_a_form_is_no_part_of_it():
    decoy = field(b"DECOY", b"model", b"gpt-4o-mini-transcribe") + b"--DECOY--\r\n"
    body = decoy + field(b"REAL", b"model", b"gpt-4o-transcribe") + b"--REAL--\r\n"
    assert form_model_and_stream(body, b"REAL") == ("gpt-4o-transcribe", False)


def test_a_file_part_named_model_is_no_model():
    assert form_model_and_stream(*form({}, {"model": ("model.txt", b"gpt-4o")})) == (None, False)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"model": "gpt-4o"}',
        b"--b",  # no line end
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o',  # cut before the next boundary
        b"--b\r\n" + b"x" * 10_000 + b"\r\n\r\ngpt-4o\r\n--b--",  # headers longer than allowed
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n\xff\xfe\r\n--b--',  # not UTF-8
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + b"m" * 300 + b"\r\n--b--",  # too long
        field(b"other", b"model", b"gpt-4o") + b"--other--",  # another boundary's parts
    ],
)
def test_what_is_not_a_readable_form_gives_no_model(body):
    assert form_model_and_stream(body, b"b") == (None, False)


def test_a_form_of_many_parts_is_searched_only_so_far():
    parts = b"".join(field(b"b", b"f%d" % i, b"v") for i in range(MAX_PARTS))
    body = parts + field(b"b", b"model", b"gpt-4o") + b"--b--\r\n"
    assert form_model_and_stream(body, b"b") == (None, False)
    assert form_model_and_stream(body[len(field(b"b", b"f0", b"v")) :], b"b") == ("gpt-4o", False)


def test_a_field_name_given_as_a_bare_token_is_read_as_form_parsers_read_it():
    body = b"--B\r\nContent-Disposition: form-data; name=model\r\n\r\ngpt-4o-transcribe\r\n--B--\r\n"
    assert form_model_and_stream(body, b"B") == ("gpt-4o-transcribe", False)
    body = b"--B\r\nContent-Disposition: form-data; name=stream;\r\n\r\ntrue\r\n--B--\r\n"
    assert form_model_and_stream(body, b"B") == (None, True)


def test_parameter_names_are_read_whatever_their_case():
    body = b'--B\r\nContent-Disposition: form-data; NAME="model"\r\n\r\ngpt-4o-transcribe\r\n--B--\r\n'
    assert form_model_and_stream(body, b"B") == ("gpt-4o-transcribe", False)
    upload = b'--B\r\nContent-Disposition: form-data; name="model"; FileName="m.txt"\r\n\r\nforged\r\n--B--\r\n'
    assert form_model_and_stream(upload, b"B") == (None, False)  # a file part named model is no model


def test_a_model_given_twice_is_known_only_when_both_copies_agree():
    # Which copy the provider's form parser keeps is not documented: a guess could price the wrong model.
    twice = (
        field(b"B", b"model", b"gpt-4o-mini-transcribe") + field(b"B", b"model", b"gpt-4o-transcribe") + b"--B--\r\n"
    )
    assert form_model_and_stream(twice, b"B") == (None, False)
    same = field(b"B", b"model", b"gpt-4o-transcribe") * 2 + b"--B--\r\n"
    assert form_model_and_stream(same, b"B") == ("gpt-4o-transcribe", False)


def test_a_files_bytes_holding_the_boundary_with_more_on_its_line_are_the_files():
    # RFC 2046: a delimiter line is the boundary and nothing but spaces after it (or "--", closing).
    decoy = b'\r\n--BX\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n--BX\r\n'
    file_part = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\nID3' + decoy
    body = file_part + b"A" * 5000 + b"\r\n" + field(b"B", b"model", b"gpt-4o-transcribe") + b"--B--\r\n"
    # Before: "gpt-4o-mini-transcribe", read from the file, priced at half the model the provider bills.
    assert form_model_and_stream(body, b"B") == ("gpt-4o-transcribe", False)
    padded = b'--B \t\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o\r\n--B  \r\n' + field(
        b"B", b"stream", b"true"
    )
    assert form_model_and_stream(padded + b"--B--\r\n", b"B") == ("gpt-4o", True)  # spaces after it are allowed


@pytest.mark.parametrize(
    "between",
    [
        b"".join(field(b"B", b"f%d" % i, b"v") for i in range(MAX_PARTS)),  # more parts than are read
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="' + b"n" * 5000 + b'"\r\n\r\nx\r\n',  # a long head
    ],
)
def test_a_model_found_before_the_search_gave_up_is_not_taken_for_the_forms(between):
    # A part not read may name another model, which the provider would bill.
    body = field(b"B", b"model", b"gpt-4o-mini-transcribe") + between + field(b"B", b"model", b"gpt-4o-transcribe")
    # Before: "gpt-4o-mini-transcribe", the model of the first part only.
    assert form_model_and_stream(body + b"--B--\r\n", b"B") == (None, False)
    assert form_model_and_stream(field(b"B", b"model", b"gpt-4o") + b"--B", b"B") == (None, False)  # never closed


def test_a_boundary_followed_by_dashes_and_more_on_its_line_leaves_the_model_unknown():
    # RFC 2046, Go's mime and Python's email: "--XyZ--junk" is a file's bytes; Starlette's parser ends the form there.
    decoy = b"\r\n--XyZ--junk in the file\r\n"
    file_part = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\nID3' + decoy
    body = file_part + b"\r\n" + field(b"XyZ", b"model", b"whisper-1") + b"--XyZ--"
    assert form_model_and_stream(body, b"XyZ") == (None, False)
    first = field(b"XyZ", b"model", b"gpt-4o-transcribe") + file_part + b"\r\n" + field(b"XyZ", b"prompt", b"hi")
    assert form_model_and_stream(first + b"--XyZ--  \r\n", b"XyZ") == (None, False)
    # A value ended so: the model's own line would hold the rest (before: "gpt-4o-transcribe\r\n--XyZ--x").
    cut = field(b"XyZ", b"model", b"gpt-4o-transcribe") + b"--XyZ--x\r\n--XyZ--\r\n"
    assert form_model_and_stream(cut, b"XyZ") == (None, False)


@pytest.mark.parametrize(
    "body",
    [
        # A form of bare LFs read by the parsers that read them (gpt-4o-transcribe), a CRLF one after its close.
        b'--abc\nContent-Disposition: form-data; name="model"\n\ngpt-4o-transcribe\n--abc--\n\r\n'
        + field(b"abc", b"model", b"gpt-4o-mini-transcribe")
        + b"--abc--\r\n",
        # Closed before any part: a parser reads no field at all.
        b"--abc--\r\n" + field(b"abc", b"model", b"gpt-4o-mini-transcribe") + b"--abc--\r\n",
        b"preamble\r\n--abc--\r\n" + field(b"abc", b"model", b"gpt-4o-mini-transcribe") + b"--abc--\r\n",
        # A bare CR ends a header line for Python's email (which then reads a file's headers) and for no other parser.
        field(b"abc", b"model", b"gpt-4o-transcribe").replace(
            b"\r\nContent-Disposition", b"\r\nX-A: b\rContent-Disposition"
        )
        + b'--abc\r\nX-A: b\rContent-Disposition: form-data; name="file"; filename="a"\r\n'
        + b'Content-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n--abc--\r\n',
    ],
)
def test_a_form_the_parsers_could_read_to_another_model_has_none(body):
    assert form_model_and_stream(body, b"abc") == (None, False)  # before: gpt-4o-mini-transcribe


@pytest.mark.parametrize(
    ("encoding", "value", "model"),
    [
        ("quoted-printable", b"gpt-4o=2Dtranscribe", None),  # Go's mime reads gpt-4o-transcribe
        ("base64", b"Z3B0LTRvLXRyYW5zY3JpYmU=", None),
        ("QUOTED-PRINTABLE ", b"gpt-4o-transcribe", None),
        ("8bit", b"gpt-4o-transcribe", "gpt-4o-transcribe"),
        (" Binary", b"gpt-4o-transcribe", "gpt-4o-transcribe"),
    ],
)
def test_a_model_in_encoded_bytes_is_unknown_rather_than_its_bytes(encoding, value, model):
    head = b'Content-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: ' + encoding.encode()
    body = b"--B\r\n" + head + b"\r\n\r\n" + value + b"\r\n--B\r\n"
    body += b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n--B--\r\n'
    assert form_model_and_stream(body, b"B") == (model, False)


def part(boundary: bytes, head: bytes, value: bytes) -> bytes:
    return b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + value + b"\r\n"


def test_a_parameter_inside_another_ones_quoted_value_is_not_read_as_the_parts():
    first = part(b"b", b'Content-Disposition: form-data; x="; filename=a"; name="model"', b"gpt-4o-transcribe")
    second = part(b"b", b'Content-Disposition: form-data; x="; name=model"; name="prompt"', b"gpt-4o-mini-transcribe")
    # Before: the first part was taken for a file, the second for the model (half the price).
    assert form_model_and_stream(first + second + b"--b--\r\n", b"b") == ("gpt-4o-transcribe", False)


@pytest.mark.parametrize(
    "head",
    [
        b'Content-Disposition: form-data;\r\n name="model"',  # folded: every parser joins the lines
        b"Content-Disposition: form-data; name*=utf-8''model",  # RFC 2231: Go's mime and Python's email decode it
        b"Content-Disposition: form-data; name*0=mo; name*1=del",
        b'Content-Disposition: form-data; name="=?utf-8?q?model?="',  # RFC 2047: the new email policy decodes it
        b"Content-Disposition: form-data; name=utf-8''model",  # the new email policy finds a charset there too
        b'Content-Disposition: form-data; name="mo\\del"',  # Go's mime keeps the backslash, Python's email drops it
        b'Content-Disposition: form-data; name="model"; filename=""',  # a field to Go's mime, a file to Starlette
        b'Content-Disposition: form-data; name="prompt"; name="model"',  # Go refuses it, Starlette keeps the last
        b'Content-Disposition: form-data; name="model"; x="a\\\\"',  # Python's old parser counts the quotes otherwise
        b'Content-Disposition: form-data; name="model"; x=a/b',  # not a token: Go's mime reads no parameter
        b'Content-Disposition: attachment; name="model"',  # Starlette reads a part of any kind
        b'Content-Disposition: form-data; name="prompt"\r\nContent-Disposition: form-data; name="model"',
    ],
)
def test_a_part_the_form_parsers_could_name_otherwise_leaves_the_model_unknown(head):
    cheaper = field(b"b", b"model", b"gpt-4o-mini-transcribe")
    body = part(b"b", head, b"gpt-4o-transcribe") + cheaper + b"--b--\r\n"
    assert form_model_and_stream(body, b"b") == (None, False)  # before, most gave gpt-4o-mini-transcribe


def test_a_file_name_with_backslashes_as_httpx_escapes_them_leaves_the_fields_read():
    body, boundary = form({"model": "whisper-1"}, {"file": ("C:\\audio\\a.wav", b"RIFF")})
    assert b'filename="C:\\\\audio' in body
    assert form_model_and_stream(body, boundary) == ("whisper-1", False)


def test_a_part_without_headers_is_nameless_and_its_value_is_not_read_as_headers():
    # Go's mime, Python's email and python-multipart read no headers: its value's first line is no name.
    nameless = b'--abc\r\n\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n'
    body = nameless + field(b"abc", b"model", b"gpt-4o-transcribe") + b"--abc--\r\n"
    assert form_model_and_stream(body, b"abc") == ("gpt-4o-transcribe", False)  # before: None (read twice)


@pytest.mark.parametrize("after", [b"\r\n", b"  \r\n", b"\n", b"--\r\n"])
def test_a_value_beginning_with_the_boundary_leaves_the_model_unknown(after):
    # Go's mime ends the prompt there, empty, and reads a part of its own, which Python's parsers keep in the prompt.
    hidden = b"--abc" + after + b'Content-Disposition: form-data; name="model"\r\n\r\ngpt-4o-transcribe\r\n'
    body = field(b"abc", b"prompt", hidden) + field(b"abc", b"model", b"gpt-4o-mini-transcribe") + b"--abc--\r\n"
    assert form_model_and_stream(body, b"abc") == (None, False)  # before: gpt-4o-mini-transcribe
    # Both at once: what was read as the first part's headers was its value, then the same trick.
    nameless = b'--abc\r\n\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n'
    both = nameless + field(b"abc", b"prompt", hidden[:-2]) + b"--abc--\r\n"
    assert form_model_and_stream(both, b"abc") == (None, False)  # before: gpt-4o-mini-transcribe


def test_a_value_beginning_with_the_boundarys_text_and_more_is_read():
    body = field(b"abc", b"prompt", b"--abcdef") + field(b"abc", b"model", b"gpt-4o-transcribe") + b"--abc--\r\n"
    assert form_model_and_stream(body, b"abc") == ("gpt-4o-transcribe", False)


def test_a_disposition_with_a_space_before_its_colon_leaves_the_model_unknown():
    # Go's textproto keeps such a key as written, so the part has no name there; python-multipart refuses it.
    body = b'--x\r\nContent-Disposition :form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n--x--\r\n'
    assert form_model_and_stream(body, b"x") == (None, False)  # before: gpt-4o-mini-transcribe


def test_a_file_named_model_beside_the_model_field_leaves_the_model_unknown():
    # Starlette's FormData.get("model") gives the last part of that name: here the file.
    file_part = b'--x\r\nContent-Disposition: form-data; name="model"; filename="a"\r\n\r\nRIFF\r\n'
    body = field(b"x", b"model", b"gpt-4o-mini-transcribe") + file_part + b"--x--\r\n"
    assert form_model_and_stream(body, b"x") == (None, False)  # before: gpt-4o-mini-transcribe


@pytest.mark.parametrize(
    ("streams", "streaming"),
    [
        ([b"", b"true"], False),  # Go's mime keeps the first, Python's parsers the last: before, True
        ([b"\ntrue"], False),  # not "true" to the provider: before, True once stripped
        ([b"true", b"true"], True),
        ([b"true"], True),
    ],
)
def test_a_stream_is_one_every_parser_reads_as_true(streams, streaming):
    fields = b"".join(field(b"x", b"stream", value) for value in streams)
    body = field(b"x", b"model", b"gpt-4o-transcribe") + fields + b"--x--\r\n"
    assert form_model_and_stream(body, b"x") == ("gpt-4o-transcribe", streaming)


def test_a_stream_in_a_form_not_read_for_sure_is_none():
    unsure = b"--x\r\nContent-Disposition: form-data; name*=utf-8''stream\r\n\r\nfalse\r\n"
    body = field(b"x", b"stream", b"true") + unsure + field(b"x", b"model", b"gpt-4o-transcribe") + b"--x--\r\n"
    assert form_model_and_stream(body, b"x") == (None, False)  # before: (None, True)
    assert form_model_and_stream(field(b"x", b"stream", b"true"), b"x") == (None, False)  # not closed


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (b"", False),
        (b"model=gpt-4o", True),
        (b"a=1&stream", True),
        (b"%6Dodel=x", True),
        (b"models=x&x=model", False),
        (b"%ff%00=1&\xff=model&model%00=x", False),  # invalid UTF-8, control characters
        (b"\x00" * 100_000 + b"&model=x", True),
    ],
)
def test_a_query_naming_a_form_field_is_seen(query, names):
    assert query_names_a_field(query) is names
