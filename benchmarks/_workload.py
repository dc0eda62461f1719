"""One benchmark process: set up one configuration, run the workload, print one JSON line.

The workload is ``dspy.ChainOfThought("question -> answer")`` over the real
``dspy.LM`` HTTP path (cache off) against the fake server at ``--base-url``,
with a 4 KB question. After ``--warmup`` calls and a ``gc.collect()`` it times
``--calls`` calls, flushes the span pipeline, collects again and reports the
wall and CPU time per call (CPU: all threads of this process, the
batch processor's included), the RSS growth and, with ``--tracemalloc``, the growth of
memory traced from just before the measured calls. Timing runs should not use
``--tracemalloc``: tracing every allocation slows the calls several times.

The orchestrator (``run.py``) starts this script with the interpreter of the
configuration's venv; it is not meant to be run by hand, but can be:
``PYTHONPATH=src python benchmarks/_workload.py --config defaults --base-url URL``.
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
from typing import TYPE_CHECKING, Any

from _configs import BY_NAME, BenchConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from _null_exporter import NullExporter

REPORTED_DISTRIBUTIONS = (
    "dspy",
    "litellm",
    "opentelemetry-sdk",
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


def set_up(config: BenchConfig) -> tuple[TracerProvider | None, NullExporter | None]:
    """Apply ``config`` to this process: DSPy settings, dspy-otel or a peer instrumentor."""
    import dspy

    if config.kind == "dspy":
        dspy.configure(**dict(config.dspy_settings))
        return None, None
    from _null_exporter import NullExporter

    exporter = NullExporter()
    if config.kind == "dspy_otel":
        import dspy_otel

        overrides: dict[str, Any] = dict(config.otel_overrides)
        provider: TracerProvider = dspy_otel.configure(**overrides, span_exporter=exporter)
        return provider, exporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor: Any = importlib.import_module(config.peer_module).DSPyInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    return provider, exporter


def run(config: BenchConfig, base_url: str, calls: int, warmup: int, trace_memory: bool) -> dict[str, Any]:
    """Measure ``calls`` workload calls under ``config``; the result is JSON-ready."""
    import dspy

    lm = dspy.LM("openai/fake-model", api_base=base_url, api_key="fake", cache=False)
    dspy.configure(lm=lm)
    provider, exporter = set_up(config)
    program = dspy.ChainOfThought("question -> answer")
    answer = str(program(question=QUESTION).answer)
    if not answer.startswith("42"):
        raise RuntimeError(f"the fake server's answer did not come back: {answer[:80]!r}")
    for _ in range(warmup):
        program(question=QUESTION)
    if provider is not None:
        provider.force_flush()
    spans_before = exporter.spans if exporter else 0

    gc.collect()
    if trace_memory:
        tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before = rss_bytes()
    cpu_start = time.process_time()
    start = time.perf_counter()
    for _ in range(calls):
        program(question=QUESTION)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if provider is not None:
        provider.force_flush()
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
        "spans_per_call": (exporter.spans - spans_before) / calls if exporter else None,
        "versions": installed_versions(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, choices=sorted(BY_NAME))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    result = run(BY_NAME[args.config], args.base_url, args.calls, args.warmup, args.tracemalloc)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
