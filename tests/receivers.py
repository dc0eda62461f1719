"""Local OTLP receivers for tests: gRPC and HTTP keeping the raw bytes of every request, and one decoding spans."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]  # no stubs
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Status

# A self-signed certificate for 127.0.0.1 and localhost, valid until 2126, and its key, made with
# openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
#   -subj "/CN=dspy-otel test receiver" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost"
TLS_CERT = Path(__file__).parent / "data" / "tls" / "cert.pem"
TLS_KEY = Path(__file__).parent / "data" / "tls" / "key.pem"


class Received:
    """Every request body a receiver got, as raw bytes, and the trace requests decoded."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.requests: list[ExportTraceServiceRequest] = []

    def add(self, body: bytes, request: ExportTraceServiceRequest | None = None) -> None:
        with self.lock:
            self.bodies.append(body)
            if request is not None:
                self.requests.append(request)


def _decoded(path: str, encoding: str | None, body: bytes) -> ExportTraceServiceRequest | None:
    """An OTLP/HTTP traces request body decoded (gzip or deflate undone), ``None`` for other paths."""
    if path != "/v1/traces":
        return None
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return ExportTraceServiceRequest.FromString(body)


@contextmanager
def http_receiver(port: int = 0, *, tls: bool = False) -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver on 127.0.0.1 (``port`` 0: any free one) that keeps every request's raw bytes.

    ``tls``: HTTPS with :data:`TLS_CERT` (self-signed, for 127.0.0.1 and localhost).
    """
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.add(bytes(self.headers) + body, _decoded(self.path, self.headers.get("Content-Encoding"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS_CERT, TLS_KEY)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def grpc_receiver(port: int = 0, *, unavailable: int = 0, tls: bool = False) -> Iterator[tuple[str, Received]]:
    """An OTLP/gRPC receiver on 127.0.0.1 (``port`` 0: any free one) that keeps every request's bytes.

    ``unavailable``: answer that many requests first with ``UNAVAILABLE`` (retry after 10 ms), keeping nothing.
    ``tls``: TLS with :data:`TLS_CERT` (self-signed, for 127.0.0.1 and localhost).
    """
    received = Received()
    refusals = iter(range(unavailable))

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            if next(refusals, None) is not None:
                retry = RetryInfo(retry_delay=Duration(nanos=10_000_000)).SerializeToString()
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry),))
                context.abort(grpc.StatusCode.UNAVAILABLE, "busy, try again")
            received.add(request.SerializeToString() + repr(context.invocation_metadata()).encode(), request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)  # type: ignore[no-untyped-call]
    wanted = port
    for _ in range(50):  # a port just released can take a moment to bind again
        if tls:
            credentials = grpc.ssl_server_credentials([(TLS_KEY.read_bytes(), TLS_CERT.read_bytes())])
            port = server.add_secure_port(f"127.0.0.1:{wanted}", credentials)
        else:
            port = server.add_insecure_port(f"127.0.0.1:{wanted}")
        if port:
            break
        time.sleep(0.1)
    assert port, f"could not listen on 127.0.0.1:{wanted}"
    server.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", received
    finally:
        server.stop(None).wait()


@contextmanager
def receiver_answering(
    status: int, *, hold: threading.Event | None = None, received: Received | None = None
) -> Iterator[str]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers every request with ``status`` (a failing collector).

    Args:
        status: The HTTP status of every answer.
        hold: Answer only once this is set (a slow collector); it is set when the receiver stops.
        received: Keeps the body of each request, as soon as it is read.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if received is not None:
                received.add(body)
            if hold is not None:
                hold.wait()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()


def _pid(resource: Resource) -> int | None:
    """The resource's ``process.pid`` (set when ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS`` names ``process``)."""
    return next((int(a.value.int_value) for a in resource.attributes if a.key == "process.pid"), None)


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does: forked workers inherit pooled connections
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/metrics":  # other signals get an empty success, as from a collector
            metrics = ExportMetricsServiceRequest.FromString(body)
            with self.server.lock:
                self.server.metric_pids.extend(_pid(r.resource) for r in metrics.resource_metrics)
        if self.path != "/v1/traces":
            self._reply(b"")
            return
        request = ExportTraceServiceRequest.FromString(body)
        records = [
            {
                "name": span.name,
                "trace_id": span.trace_id.hex(),
                "span_id": span.span_id.hex(),
                "parent_id": span.parent_span_id.hex() or None,
                "error": span.status.code == Status.STATUS_CODE_ERROR,
                "content": next(
                    (a.value.string_value for a in span.attributes if a.key == "gen_ai.input.messages"), ""
                ),
                "pid": _pid(resource_spans.resource),
            }
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self.server.lock:
            self.server.records.extend(records)
        self._reply(ExportTraceServiceResponse().SerializeToString())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the receiver quiet."""


class OtlpReceiver(ThreadingHTTPServer):
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1 that keeps every span and the pid of every metrics request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.metric_pids: list[int | None] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A running :class:`OtlpReceiver`, shut down at the end."""
    server = OtlpReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
