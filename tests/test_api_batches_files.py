"""Files and batches of both providers through a real ccproxy with the real SDKs; batch results priced at the batch rate."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import openai

from ccproxy_core.accounting.batch_results import BatchResultsParser
from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers import PROVIDERS

ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"


def openai_client(proxy):
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)


def anthropic_client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)


def standard_cost(service_type, model, record):
    usage = Usage(record.tokens_input, record.tokens_output, record.cache_read_tokens, record.cache_write_tokens)
    return PriceBook().compute(service_type, model, usage).total


def test_openai_file_upload_is_forwarded_byte_for_byte(proxy, upstream, recorder):
    upstream.clear_requests()
    content = b"line one\n\x00\xff binary bytes \r\n" * 50
    stored = openai_client(proxy).files.create(file=("data.bin", content), purpose="user_data")
    assert stored.bytes == len(content) and stored.filename == "data.bin"
    [received] = upstream.requests()
    assert content in received.body
    assert openai_client(proxy).files.content(stored.id).content == content
    records = recorder.wait_for_ends(2)
    assert [(r.method, r.endpoint, r.status_code) for r in records] == [
        ("POST", "/v1/files", 200),
        ("GET", "/v1/files/{file_id}/content", 200),
    ]
    assert records[1].response_bytes == len(content) and records[1].tokens_input is None
    # Uploading and downloading a file is not billed: both cost 0, as known prices.
    assert [(r.cost_usd, r.priced) for r in records] == [(0, True), (0, True)]


def test_openai_batch_output_is_accounted_at_the_batch_price(proxy, recorder):
    api = openai_client(proxy)
    lines = [
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "Hello batch " * (i + 5)}]},
            }
        )
        for i in range(3)
    ]
    source = api.files.create(file=("batch.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
    batch = api.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    batch = api.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 3
    output = api.files.content(batch.output_file_id).content
    results = [json.loads(line) for line in output.splitlines()]
    usages = [result["response"]["body"]["usage"] for result in results]
    records = recorder.wait_for_ends(4)
    assert [r.endpoint for r in records] == [
        "/v1/files",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/files/{file_id}/content",
    ]
    # Uploading the input, creating and retrieving the batch are not billed: the results are.
    assert all((r.tokens_input, r.cost_usd, r.priced) == (None, 0, True) for r in records[:3])
    fetched = records[3]
    assert fetched.tokens_input == sum(u["prompt_tokens"] for u in usages)
    assert fetched.tokens_output == sum(u["completion_tokens"] for u in usages)
    assert fetched.response_model == OPENAI_MODEL and fetched.priced
    # genai-prices has no batch variant for this model: half the standard price, as OpenAI bills batches.
    assert fetched.cost_usd == standard_cost("openai", OPENAI_MODEL, fetched) * Decimal("0.5") > 0


def test_anthropic_message_batch_results_come_through_ccproxy_and_are_priced_at_the_batch_rate(
    proxy, upstream, recorder
):
    client = anthropic_client(proxy)
    requests = [
        {
            "custom_id": f"q{i}",
            "params": {
                "model": ANTHROPIC_MODEL,
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "Question " * (i + 3)}],
            },
        }
        for i in range(2)
    ]
    created = client.messages.batches.create(requests=requests)
    assert created.processing_status == "in_progress"
    ended = client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended" and ended.results_url.startswith(proxy.url + "/v1/messages/batches/")
    upstream.clear_requests()
    results = list(client.messages.batches.results(created.id))
    assert sorted(result.custom_id for result in results) == ["q0", "q1"]
    assert any(r.path.endswith("/results") for r in upstream.requests())  # fetched through ccproxy, not around it
    records = recorder.wait_for_ends(4)  # create, retrieve, and the SDK's retrieve before fetching the results
    fetch = next(r for r in records if r.endpoint == "/v1/messages/batches/{batch_id}/results")
    assert fetch.tokens_input == sum(r.result.message.usage.input_tokens for r in results)
    assert fetch.tokens_output == sum(r.result.message.usage.output_tokens for r in results)
    usage = Usage(
        fetch.tokens_input, fetch.tokens_output, fetch.cache_read_tokens, fetch.cache_write_tokens, service_tier="batch"
    )
    batch_price = PriceBook().compute("anthropic", ANTHROPIC_MODEL, usage).total
    assert fetch.cost_usd == batch_price < standard_cost("anthropic", ANTHROPIC_MODEL, fetch)
    assert [r.tokens_input for r in records if r.endpoint != fetch.endpoint] == [None] * 3


def test_anthropic_files_api(proxy, recorder):
    client = anthropic_client(proxy)
    uploaded = client.beta.files.upload(file=("notes.txt", b"some notes", "text/plain"))
    assert uploaded.size_bytes == 10 and uploaded.id.startswith("file_")
    assert uploaded.id in [f.id for f in client.beta.files.list().data]
    assert client.beta.files.retrieve_metadata(uploaded.id).filename == "notes.txt"
    client.beta.files.delete(uploaded.id)
    records = recorder.wait_for_ends(4)
    assert {r.service_type for r in records} == {"anthropic"}
    assert [(r.method, r.endpoint) for r in records] == [
        ("POST", "/v1/files"),
        ("GET", "/v1/files"),
        ("GET", "/v1/files/{file_id}"),
        ("DELETE", "/v1/files/{file_id}"),
    ]


def test_batch_results_parser_reads_lines_cut_anywhere():
    lines = [
        json.dumps(
            {
                "custom_id": str(i),
                "result": {
                    "type": "succeeded",
                    "message": {"model": ANTHROPIC_MODEL, "usage": {"input_tokens": 10 + i, "output_tokens": 5}},
                },
            }
        ).encode()
        for i in range(3)
    ]
    lines.append(json.dumps({"custom_id": "x", "result": {"type": "errored", "error": {"type": "error"}}}).encode())
    body = b"\n".join(lines)  # no line end after the last line
    parser = BatchResultsParser()
    for start in range(0, len(body), 7):
        parser.feed(body[start : start + 7])
    usage = parser.result()
    assert (usage.input_tokens, usage.output_tokens, usage.batch.results) == (33, 15, 3)
    assert usage.response_model == ANTHROPIC_MODEL and PROVIDERS["anthropic"].name == "anthropic"


def test_a_file_that_is_not_batch_output_passes_unread(proxy, recorder):
    content = b'{"usage": {"prompt_tokens": 999}} is text, not a batch result\n' * 3000
    stored = openai_client(proxy).files.create(file=("log.jsonl", content), purpose="user_data")
    response = httpx.get(proxy.url + f"/v1/files/{stored.id}/content", headers={"authorization": "Bearer sk-test"})
    assert response.content == content
    records = recorder.wait_for_ends(2)
    assert (records[1].tokens_input, records[1].cost_usd, records[1].priced) == (None, 0, True)  # a download is free


def test_multipart_upload_reaches_the_provider_exactly_as_sent(proxy, upstream):
    upstream.clear_requests()
    files = {"file": ("weird name \u00e9.bin", bytes(range(256)) * 64, "application/octet-stream")}
    request = httpx.Request(
        "POST",
        proxy.url + "/v1/files",
        data={"purpose": "user_data"},
        files=files,
        headers={"authorization": "Bearer sk-test"},
    )
    sent = request.read()
    with httpx.Client() as client:
        response = client.send(request)
    assert response.status_code == 200 and response.json()["bytes"] == 256 * 64
    [received] = upstream.requests()
    assert received.body == sent
    assert received.header("content-type") == request.headers["content-type"]


def test_an_anthropic_file_that_looks_like_batch_results_is_downloaded_unbilled(proxy, recorder):
    # Anthropic's batch results have a route of their own; a file is only a file, whatever it holds.
    message = {"model": ANTHROPIC_MODEL, "usage": {"input_tokens": 100_000, "output_tokens": 10_000}}
    content = json.dumps({"custom_id": "x1", "result": {"type": "succeeded", "message": message}}).encode() + b"\n"
    client = anthropic_client(proxy)
    uploaded = client.beta.files.upload(file=("results.jsonl", content, "application/jsonl"))
    assert client.beta.files.download(uploaded.id).read() == content
    _upload, download = recorder.wait_for_ends(2)
    assert (download.service_type, download.endpoint) == ("anthropic", "/v1/files/{file_id}/content")
    assert (download.tokens_input, download.cost_usd, download.priced) == (None, 0, True)  # before: $0.225
