"""One benchmark process: set up one configuration, run the workload, print one JSON line.

The workload is ``dspy.ChainOfThought("question -> answer")`` over the real
``dspy.LM`` HTTP path (cache off) against the fake server at ``--base-url``,
with a 4 KB question. After ``--warmup`` calls, a flush of the span pipeline
and a ``gc.collect()`` it times ``--calls`` calls and the flush of the span
pipeline after them (so the export of every measured span is inside), collects
again and reports the wall and CPU time per call (CPU: all threads of this
process, the batch processor's export thread included), the RSS growth, what
was exported (spans; over OTLP also requests and bytes, as counted by the
receiver at ``--receiver``) and, with ``--tracemalloc``, the growth of memory
traced from just before the measured calls. Timing runs should not use
``--tracemalloc``: tracing every allocation slows the calls several times.

The orchestrator (``run.py``) starts this script with the interpreter of the
configuration's venv; it is not meant to be run by hand, but can be:
``PYTHONPATH=src python benchmarks/_workload.py --config defaults --base-url URL``
(a configuration exporting over OTLP also needs ``--receiver HTTP_PORT,GRPC_PORT`` of a
running ``_receiver.py``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from _configs import BY_NAME, BenchConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

Exported = Callable[[], dict[str, int]]
"""Counts of what left the process so far: ``spans`` (and, over OTLP, ``requests`` and ``bytes``)."""

REPORTED_DISTRIBUTIONS = (
    "dspy",
    "litellm",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-exporter-otlp-proto-grpc",
    "protobuf",
    "grpcio",
    "opentelemetry-instrumentation-genai-dspy",
    "opentelemetry-util-genai",
    "openinference-instrumentation-dspy",
    "openinference-instrumentation",
)
QUESTION_BYTES = 4096
QUESTION = ("Summarise the following notes in one word. " + "notes " * QUESTION_BYTES)[:QUESTION_BYTES]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def installed_versions() -> dict[str, str]:
    """Versions of the :data:`REPORTED_DISTRIBUTIONS` installed in this interpreter."""
    versions = {}
    for name in REPORTED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def set_up(config: BenchConfig, receiver: tuple[int, int] | None) -> tuple[TracerProvider | None, Exported | None]:
    """Apply ``config`` to this process: DSPy settings, dspy-otel or a peer instrumentor.

    Args:
        config: The configuration.
        receiver: The HTTP and gRPC ports of ``_receiver.py`` on 127.0.0.1, for a configuration exporting over OTLP.

    Returns:
        The tracer provider (None without tracing) and what reads the export counts.
    """
    import dspy

    if config.kind == "dspy":
        dspy.configure(**dict(config.dspy_settings))
        return None, None
    exporter, exported, otlp = _export(config, receiver)
    if config.kind == "dspy_otel":
        import dspy_otel

        overrides: dict[str, Any] = {**dict(config.otel_overrides), **otlp}
        provider: TracerProvider = dspy_otel.configure(**overrides, span_exporter=exporter)
        return provider, exported
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter or _sdk_otlp_exporter(otlp)))
    instrumentor: Any = importlib.import_module(config.peer_module).DSPyInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    return provider, exported


def _export(
    config: BenchConfig, receiver: tuple[int, int] | None
) -> tuple[SpanExporter | None, Exported, dict[str, str]]:
    """Where ``config``'s spans go and what counts them.

    Returns:
        The null exporter, its count and no settings; or, over OTLP, no exporter, the receiver's counts and
        dspy-otel's settings for the receiver (``exporter``, ``protocol``, ``endpoint``).
    """
    if config.export == "null":
        from _null_exporter import NullExporter

        null = NullExporter()
        return null, lambda: {"spans": null.spans}, {}
    if receiver is None:
        raise SystemExit(f"{config.name} exports over OTLP: pass --receiver HTTP_PORT,GRPC_PORT")
    http_port, grpc_port = receiver
    port = grpc_port if config.export == "grpc" else http_port

    def received() -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats", timeout=30) as answer:
            counts: dict[str, int] = json.load(answer)
        return counts

    return None, received, {"exporter": "otlp", "protocol": config.export, "endpoint": f"http://127.0.0.1:{port}"}


def _sdk_otlp_exporter(otlp: dict[str, str]) -> SpanExporter:
    """The SDK's OTLP span exporter for dspy-otel's settings ``otlp``, set up as a peer's user would."""
    if otlp["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=otlp["endpoint"], insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=f"{otlp['endpoint']}/v1/traces")


def run(
    config: BenchConfig, base_url: str, receiver: tuple[int, int] | None, calls: int, warmup: int, trace_memory: bool
) -> dict[str, Any]:
    """Measure ``calls`` workload calls under ``config``; the result is JSON-ready."""
    import dspy

    lm = dspy.LM("openai/fake-model", api_base=base_url, api_key="fake", cache=False)
    dspy.configure(lm=lm)
    provider, exported = set_up(config, receiver)
    program = dspy.ChainOfThought("question -> answer")
    answer = str(program(question=QUESTION).answer)
    if not answer.startswith("42"):
        raise RuntimeError(f"the fake server's answer did not come back: {answer[:80]!r}")
    for _ in range(warmup):
        program(question=QUESTION)
    if provider is not None:
        provider.force_flush()
    before = exported() if exported else {}

    gc.collect()
    if trace_memory:
        tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before = rss_bytes()
    cpu_start = time.process_time()
    start = time.perf_counter()
    for _ in range(calls):
        program(question=QUESTION)
    if provider is not None:
        provider.force_flush()  # the export of the measured spans is part of their cost
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    gc.collect()
    traced_growth = tracemalloc.get_traced_memory()[0] - traced_before if trace_memory else None
    rss_growth = rss_bytes() - rss_before
    tracemalloc.stop()
    return {
        "config": config.name,
        "calls": calls,
        "tracemalloc": trace_memory,
        "us_per_call": elapsed / calls * 1e6,
        "cpu_us_per_call": cpu / calls * 1e6,
        "rss_growth": rss_growth,
        "traced_growth": traced_growth,
        **{f"{key}_per_call": (count - before[key]) / calls for key, count in (exported() if exported else {}).items()},
        "versions": installed_versions(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, choices=sorted(BY_NAME))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--receiver", metavar="HTTP_PORT,GRPC_PORT", help="the ports of _receiver.py")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    receiver = None
    if args.receiver:
        http_port, grpc_port = args.receiver.split(",")
        receiver = int(http_port), int(grpc_port)
    result = run(BY_NAME[args.config], args.base_url, receiver, args.calls, args.warmup, args.tracemalloc)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
