"""An OTLP/HTTP receiver on loopback that decodes the protobuf it is sent (opentelemetry-proto)."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SIGNALS: dict[str, tuple[Any, Any]] = {  # protobuf message classes, typed loosely by their stubs
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


class OTLPReceiver:
    """Keeps every export it receives, decoded, and the raw bytes of each (for searching)."""

    def __init__(self, reply_bytes: int = 0) -> None:
        """``reply_bytes``: answer each export with that many bytes (a hostile collector), noting in
        ``replies_sent`` how many of them the client took before it closed the connection."""
        self.replies_sent: list[int] = []
        self.exports: dict[str, list[Any]] = {path: [] for path in SIGNALS}
        self.raw: list[bytes] = []
        self.content_types: set[str] = set()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                elif self.headers.get("content-encoding") == "deflate":
                    body = zlib.decompress(body)
                kinds = SIGNALS.get(self.path)
                if kinds is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                request_type, response_type = kinds
                message = request_type.FromString(body)
                with receiver._changed:
                    receiver.exports[self.path].append(message)
                    receiver.raw.append(body)
                    receiver.content_types.add(self.headers.get("content-type", ""))
                    receiver._changed.notify_all()
                answer = response_type().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(reply_bytes or len(answer)))
                self.end_headers()
                if reply_bytes:
                    receiver.replies_sent.append(self._send_zeros(reply_bytes))
                else:
                    self.wfile.write(answer)

            def _send_zeros(self, count: int) -> int:
                sent, chunk = 0, bytes(1 << 16)
                try:
                    while sent < count:
                        self.wfile.write(chunk[: count - sent])
                        sent += min(len(chunk), count - sent)
                except OSError:  # the client closed the connection
                    pass
                return sent

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with the attributes of its resource."""
        with self._changed:
            return [
                (attributes(resource_spans.resource.attributes), span)
                for export in self.exports["/v1/traces"]
                for resource_spans in export.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]

    def metrics(self) -> dict[str, list[Any]]:
        """Every metric received, by name."""
        found: dict[str, list[Any]] = {}
        with self._changed:
            for export in self.exports["/v1/metrics"]:
                for resource_metrics in export.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        for metric in scope_metrics.metrics:
                            found.setdefault(metric.name, []).append(metric)
        return found

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := predicate()):
                left = deadline - time.monotonic()
                assert left > 0, "the OTLP receiver did not get what was expected in time"
                self._changed.wait(min(left, 0.5))
            return result

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def value_of(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(key_values: Any) -> dict[str, Any]:
    return {item.key: value_of(item.value) for item in key_values}
