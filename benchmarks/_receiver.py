"""An OTLP receiver on 127.0.0.1 that accepts and discards, over HTTP and gRPC, counting what it got.

Run in its own process by ``run.py`` for the whole run (its threads stay out of
the measured processes, as a collector's would): prints one JSON line with its
ports, ``{"http": PORT, "grpc": PORT}``, then serves until its standard input
closes. ``collector_down.py`` runs :func:`serving` in its orchestrator instead.

- OTLP/HTTP: every ``POST`` gets ``200`` with an empty ``ExportTraceServiceResponse``
  (zero bytes, ``application/x-protobuf``); HTTP/1.1 with keep-alive, one thread
  per connection; a gzip or deflate body is inflated.
- OTLP/gRPC: every unary call (``TraceService/Export``, the metrics' too) gets the
  empty response; the request arrives as raw bytes (no deserializer).
- ``GET /stats`` on the HTTP port returns the counts of trace export requests,
  over both protocols: ``{"requests": N, "bytes": N, "spans": N}``. Bytes are the
  request bodies as they arrived (gRPC: after gRPC's own message decompression);
  spans are counted by decoding each trace request with the ``opentelemetry-proto``
  classes (about 1 µs per span, in this process) before the answer is sent, so
  the counts include every export the sender has seen answered.

Usage: ``python benchmarks/_receiver.py`` (needs ``grpcio`` and ``opentelemetry-proto``).
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACES_HTTP_PATH = "/v1/traces"
TRACES_GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_INFLATE: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.decompress, "deflate": zlib.decompress}


@dataclass
class Counts:
    """Trace export requests received so far, over both protocols (thread-safe)."""

    requests: int = 0
    wire_bytes: int = 0
    spans: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, received: int, body: bytes) -> None:
        """Count one trace request of ``received`` bytes on the wire whose decoded body is ``body``."""
        request = ExportTraceServiceRequest.FromString(body)
        spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self._lock:
            self.requests += 1
            self.wire_bytes += received
            self.spans += spans

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "bytes": self.wire_bytes, "spans": self.spans}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, counts: Counts) -> None:
        super().__init__(("127.0.0.1", 0), _HttpHandler)
        self.counts = counts


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporter's session reuses its connection
    server: _HttpServer

    def do_POST(self) -> None:
        received = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == TRACES_HTTP_PATH:
            inflate = _INFLATE.get(self.headers.get("Content-Encoding", "").strip().lower())
            self.server.counts.add(len(received), inflate(received) if inflate else received)
        self._reply(b"", "application/x-protobuf")  # an empty Export*ServiceResponse serializes to no bytes

    def do_GET(self) -> None:
        self._reply(json.dumps(self.server.counts.as_dict()).encode(), "application/json")

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _AcceptAllRpcs(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    """Answers every unary call with an empty message (a successful OTLP export), counting trace requests."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def service(self, handler_call_details: Any) -> Any:
        counted = handler_call_details.method == TRACES_GRPC_METHOD

        def export(request: bytes, context: Any) -> bytes:
            if counted:
                self.counts.add(len(request), request)
            return b""

        return grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes in and out


@contextmanager
def serving() -> Iterator[tuple[int, int, Counts]]:
    """Serve OTLP/HTTP and OTLP/gRPC on free ports of 127.0.0.1; yields both ports and the counts."""
    counts = Counts()
    http_server = _HttpServer(counts)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    # no limit on a message's size: 512 spans with content (~8 KB each) pass gRPC's default limit, 4 MiB
    options = [("grpc.max_receive_message_length", -1)]
    grpc_server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[_AcceptAllRpcs(counts)], options=options)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        yield http_server.server_address[1], grpc_port, counts
    finally:
        grpc_server.stop(None)
        http_server.shutdown()
        http_server.server_close()


def main() -> None:
    with serving() as (http_port, grpc_port, _):
        print(json.dumps({"http": http_port, "grpc": grpc_port}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
