"""The model and stream fields of multipart uploads, as the openai SDK (through httpx) writes them."""

from __future__ import annotations

import httpx
import pytest

from ccproxy_core.forwarding.form_fields import form_model_and_stream


def form_body(data: dict, files: dict) -> bytes:
    return httpx.Request("POST", "http://provider/v1/audio/transcriptions", data=data, files=files).read()


def test_the_fields_beside_a_file_are_read():
    body = form_body({"model": "gpt-4o-transcribe", "stream": "true"}, {"file": ("a.wav", b"RIFF" * 1000)})
    assert form_model_and_stream(body) == ("gpt-4o-transcribe", True)


def test_fields_after_the_file_are_read_and_the_files_own_bytes_are_not():
    # The file's bytes hold what looks like a field: only real parts count.
    fake_part = b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nforged-model\r\n'
    body = form_body({}, {"file": ("a.wav", fake_part * 50), "model": (None, b"gpt-image-1")})
    assert form_model_and_stream(body) == ("gpt-image-1", False)


def test_a_file_part_named_model_is_no_model():
    assert form_model_and_stream(form_body({}, {"model": ("model.txt", b"gpt-4o")})) == (None, False)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"model": "gpt-4o"}',
        b"--",
        b"--boundary",  # no line end
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o',  # cut before the next boundary
        b"--" + b"x" * 200 + b"\r\n",  # a boundary longer than allowed
        b"--b\r\n" + b"x" * 10_000 + b"\r\n\r\ngpt-4o\r\n--b--",  # headers longer than allowed
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n\xff\xfe\r\n--b--',  # not UTF-8
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + b"m" * 300 + b"\r\n--b--",  # too long
    ],
)
def test_what_is_not_a_readable_form_gives_no_model(body):
    assert form_model_and_stream(body) == (None, False)


def test_a_form_of_many_parts_is_searched_only_so_far():
    parts = b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(100))
    body = parts + b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o\r\n--b--\r\n'
    assert form_model_and_stream(body) == (None, False)
    assert form_model_and_stream(body[body.index(b'--b\r\nContent-Disposition: form-data; name="f90"') :]) == (
        "gpt-4o",
        False,
    )
