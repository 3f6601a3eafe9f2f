"""Files and batches of both providers, as the mock keeps them (in memory, the last few hundred).

OpenAI Files: ``POST /v1/files`` (multipart ``file``, ``purpose``) gives a ``file`` object;
list, retrieve, delete (``{"id", "object": "file", "deleted": true}``) and
``GET /v1/files/{id}/content`` (the bytes as uploaded). OpenAI Batches: ``POST /v1/batches``
(``input_file_id``, ``endpoint``, ``completion_window``) runs every line of the input file at
once through the mock's own answers and stores an output file of result lines
(``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``); the
batch is ``completed`` from the start. Anthropic Files (beta): ``POST /v1/files`` gives
``{"id", "type": "file", "filename", "mime_type", "size_bytes", "created_at", "downloadable"}``;
list is ``{"data", "first_id", "last_id", "has_more"}``; delete answers ``{"id", "type":
"file_deleted"}``. Anthropic Message Batches: created ``in_progress``, ``ended`` from the
first retrieve on, with ``results_url`` on the mock's own address; results are JSON Lines of
``{"custom_id", "result": {"type": "succeeded", "message"}}``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from ccproxy_core.testing.mock_upstream.answers import InvalidRequest, json_object

KEPT_OBJECTS = 500
RESULTS_CONTENT_TYPE = "application/binary"

RunOne = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]
"""Runs one batch request (endpoint, body) through the mock: (status, answer body)."""


def multipart_fields(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body: files as bytes (name in ``<field>.filename``), others as text."""
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("expected a multipart/form-data body")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        filename = part.get_filename()
        if filename is not None:
            fields[name], fields[f"{name}.filename"] = payload, filename
            fields[f"{name}.content_type"] = part.get_content_type()
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields


@dataclass
class StoredFile:
    file_id: str
    filename: str
    purpose: str
    content: bytes
    mime_type: str
    created_at: int = field(default_factory=lambda: int(time.time()))

    def openai(self) -> dict[str, Any]:
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }

    def anthropic(self) -> dict[str, Any]:
        return {
            "id": self.file_id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.content),
            "created_at": _rfc3339(self.created_at),
            "downloadable": True,
        }


class FileStore:
    """Uploaded files and batches of both providers, bounded."""

    def __init__(self) -> None:
        self.files: OrderedDict[str, StoredFile] = OrderedDict()
        self.openai_batches: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.anthropic_batches: OrderedDict[str, tuple[dict[str, Any], bytes]] = OrderedDict()

    def add_file(self, file_id: str, fields: dict[str, Any]) -> StoredFile:
        content = fields.get("file")
        if not isinstance(content, bytes):
            raise InvalidRequest("file: Field required (a file part)", "file")
        stored = StoredFile(
            file_id,
            fields.get("file.filename", "upload"),
            str(fields.get("purpose", "")),
            content,
            fields.get("file.content_type", "application/octet-stream"),
        )
        _keep(self.files, file_id, stored)
        return stored

    def create_openai_batch(
        self, batch_id: str, output_file_id: str, payload: dict[str, Any], run_one: RunOne
    ) -> dict[str, Any]:
        source = self.files.get(str(payload.get("input_file_id")))
        if source is None:
            raise InvalidRequest("input_file_id: no such file", "input_file_id")
        endpoint = payload.get("endpoint")
        lines, completed, failed = [], 0, 0
        for number, raw in enumerate(source.content.splitlines()):
            if not raw.strip():
                continue
            try:
                request = json_object(raw)
            except InvalidRequest:
                raise InvalidRequest(
                    f"input_file_id: line {number + 1} is not a JSON object", "input_file_id"
                ) from None
            status, answer = run_one(str(request.get("url", endpoint)), request.get("body") or {})
            completed, failed = completed + (status == 200), failed + (status != 200)
            lines.append(
                json.dumps(
                    {
                        "id": f"batch_req_{number:06d}",
                        "custom_id": request.get("custom_id"),
                        "response": {"status_code": status, "request_id": f"req_batch_{number:06d}", "body": answer},
                        "error": None,
                    },
                    separators=(",", ":"),
                )
            )
        output = StoredFile(
            output_file_id,
            f"{batch_id}_output.jsonl",
            "batch_output",
            ("\n".join(lines) + "\n").encode(),
            "application/jsonl",
        )
        _keep(self.files, output_file_id, output)
        now = int(time.time())
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": source.file_id,
            "completion_window": payload.get("completion_window", "24h"),
            "status": "completed",
            "output_file_id": output_file_id,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 86400,
            "finalizing_at": now,
            "completed_at": now,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": completed + failed, "completed": completed, "failed": failed},
            "metadata": payload.get("metadata"),
        }
        _keep(self.openai_batches, batch_id, batch)
        return batch

    def create_anthropic_batch(self, batch_id: str, payload: dict[str, Any], run_one: RunOne) -> dict[str, Any]:
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            raise InvalidRequest("requests: Field required (a non-empty list)", "requests")
        if not all(isinstance(entry, dict) for entry in requests):
            raise InvalidRequest("requests: each entry must be an object with custom_id and params", "requests")
        lines, succeeded, errored = [], 0, 0
        for entry in requests:
            status, answer = run_one("/v1/messages", entry.get("params") or {})
            if status == 200:
                result: dict[str, Any] = {"type": "succeeded", "message": answer}
                succeeded += 1
            else:
                result = {"type": "errored", "error": answer}
                errored += 1
            lines.append(json.dumps({"custom_id": entry.get("custom_id"), "result": result}, separators=(",", ":")))
        now = int(time.time())
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": None,
            "created_at": _rfc3339(now),
            "expires_at": _rfc3339(now + 86400),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
            "_final_counts": {"processing": 0, "succeeded": succeeded, "errored": errored, "canceled": 0, "expired": 0},
        }
        _keep(self.anthropic_batches, batch_id, (batch, ("\n".join(lines) + "\n").encode()))
        return _public(batch)

    def anthropic_batch(self, batch_id: str, base_url: str) -> dict[str, Any] | None:
        """A batch, ended from its first retrieve on (results ready at ``base_url``)."""
        stored = self.anthropic_batches.get(batch_id)
        if stored is None:
            return None
        batch = stored[0]
        if batch["processing_status"] == "in_progress":
            batch.update(
                processing_status="ended",
                ended_at=_rfc3339(int(time.time())),
                request_counts=batch["_final_counts"],
                results_url=f"{base_url}/v1/messages/batches/{batch_id}/results",
            )
        return _public(batch)

    def anthropic_results(self, batch_id: str) -> bytes | None:
        stored = self.anthropic_batches.get(batch_id)
        if stored is None or stored[0]["processing_status"] != "ended":
            return None
        return stored[1]


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if not key.startswith("_")}


def _keep(kept: OrderedDict, key: str, value: Any) -> None:
    kept[key] = value
    while len(kept) > KEPT_OBJECTS:
        kept.popitem(last=False)


def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
