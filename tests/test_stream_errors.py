"""Errors a provider reports inside a 200 stream, read as the SDKs read them."""

from __future__ import annotations

import openai
import pytest

from .raw_upstream import upstream_and_proxy_fixtures
from .test_stream_events import CHAT_BODY, CHAT_STREAM, delta_event, parse, sized

# OpenAI-compatible servers report a failure mid-stream as a chunk whose error is a bare string.
CHAT_FIRST_CHUNK = CHAT_STREAM.split(b"\n\n")[0] + b"\n\n"
STRING_ERROR = b'data: {"error": "The model is overloaded. Please retry."}\n\n'
ANSWERS = {
    "string-error-then-done": sized(CHAT_FIRST_CHUNK + STRING_ERROR + b"data: [DONE]\n\n"),
    "string-error": sized(CHAT_FIRST_CHUNK + STRING_ERROR),
    "untyped-error-in-responses": sized(delta_event("Hi", 4) + STRING_ERROR),
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


@pytest.mark.parametrize("kind", ["string-error-then-done", "string-error"])
def test_a_chat_chunk_whose_error_is_a_string_is_the_record_s_error_as_it_is_the_sdk_s(proxy, recorder, kind):
    # Before, with [DONE] after it the request was a success; without, its message was lost.
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", default_headers={"x-raw": kind})
    with pytest.raises(openai.APIError) as raised:
        list(client.chat.completions.create(**CHAT_BODY))
    assert raised.value.body == "The model is overloaded. Please retry."
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "stream_error")
    assert record.error_message == "The model is overloaded. Please retry."


def test_an_untyped_error_in_a_responses_stream_is_the_record_s_error(proxy, recorder):
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1")
    with pytest.raises(openai.APIError) as raised:
        list(
            client.responses.create(
                model="gpt-5", input="hi", stream=True, extra_headers={"x-raw": "untyped-error-in-responses"}
            )
        )
    assert raised.value.body == "The model is overloaded. Please retry."
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "stream_error")
    assert record.error_message == "The model is overloaded. Please retry."


@pytest.mark.parametrize("error", [b"{}", b'""', b"null", b"false"])
def test_a_chunk_with_an_empty_error_is_no_error_as_for_the_sdks(error):
    stream = CHAT_FIRST_CHUNK + b'data: {"error": ' + error + b"}\n\n" + CHAT_STREAM.split(b"\n\n", 1)[1]
    parser = parse("openai", [stream])
    assert not parser.final_state().error_seen
    assert (parser.result().error_type, parser.result().output_tokens) == (None, 300)
