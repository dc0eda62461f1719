"""``dspy-otel demo``: a small DSPy program traced end to end, with no API key and no network.

It starts a local OpenAI-compatible fake model, then runs a ChainOfThought
question, a ReAct agent that calls a tool, a batch through ``dspy.Parallel``
and one deliberate failure, with the ``development`` profile (everything
sampled, content captured, a window of recent calls).

Where the spans go: to the OTLP collector at ``OTEL_EXPORTER_OTLP_ENDPOINT``
(default ``localhost:4317``; in a checkout ``make stack`` or ``docker compose
up -d`` runs one with Jaeger) when one answers there; otherwise to
``dspy-otel-demo-traces.jsonl`` in OTLP-JSON, one export request per line (the
collector's ``otlpjsonfile`` receiver reads it), plus a trace tree printed at
the end. The demo says which one it used, and how to start a collector: with
``make stack`` or Docker when it runs from a checkout, else where the README
tells (an installed wheel has no compose file).
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind

from dspy_otel._window import current_window, format_record, summary_line, tokens

TRACE_FILE = Path("dspy-otel-demo-traces.jsonl")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
README_SECTION = "'Collector and Jaeger' in dspy-otel's README"


def checkout() -> Path | None:
    """The source checkout this module runs from (``pip install -e``), or ``None`` (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]  # <root>/src/dspy_otel/demo.py
    return root if (root / "docker-compose.yml").is_file() and (root / "Makefile").is_file() else None


def start_hint(root: Path | None) -> str:
    """How to start a collector and Jaeger: the checkout's own ways, else the README (a wheel has neither)."""
    if root is None:
        return f"to run one with Jaeger, see {README_SECTION}"
    return f"start one with Jaeger: `make stack` (no Docker) or `docker compose up -d`, in {root}"


def collector_endpoint() -> tuple[str, int]:
    """Host and port of the OTLP endpoint the environment points at (default ``localhost:4317``)."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    parts = urlsplit(raw if raw and "://" in raw else f"http://{raw or 'localhost:4317'}")
    return parts.hostname or "localhost", parts.port or 4317


def collector_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hex_ids(value: Any) -> Any:
    """OTLP-JSON wants trace and span IDs in hex; protobuf's JSON gives base64."""
    if isinstance(value, dict):
        return {k: base64.b64decode(v).hex() if k in _ID_FIELDS else _hex_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


class OtlpJsonFileExporter(SpanExporter):
    """Append each batch to a file as one OTLP-JSON ``ExportTraceServiceRequest`` per line, keeping the spans."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` as one line of OTLP-JSON."""
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        line = json.dumps(_hex_ids(MessageToDict(encode_spans(spans))))
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def print_trees(spans: Sequence[ReadableSpan]) -> None:
    """Print each trace as an indented tree of span names, durations and statuses."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        status = "  ERROR" if not span.status.is_ok else ""
        attributes = span.attributes or {}
        extra = ""
        if span.kind is SpanKind.CLIENT:  # an LM call: its token counts, a dash when unknown (a failed call)
            used = (attributes.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS), attributes.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS))
            extra = "  " + tokens(*used)
        print(f"{'  ' * depth}{span.name}  {ms:.1f} ms{extra}{status}")
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        print(f"trace {root.context.trace_id:032x}")
        show(root, 1)


def _weather(city: str) -> str:
    """Return today's weather in ``city``."""
    return f"It is sunny in {city}."


def _program(base_url: str) -> None:
    import dspy

    lm = dspy.LM(
        "openai/gpt-4o-mini", api_base=base_url, api_key="demo-key", cache=False, temperature=0.2, num_retries=0
    )
    dspy.configure(lm=lm)
    qa = dspy.ChainOfThought("question -> answer")
    qa(question="What is the answer to life, the universe and everything?")
    dspy.ReAct("question -> answer", tools=[_weather])(question="What's the weather in Paris?")
    batch = [(qa, {"question": f"Question {i}?"}) for i in range(3)]
    dspy.Parallel(num_threads=3, disable_progress_bar=True)(batch)
    try:
        qa(question="Please FAIL this one.")
    except Exception as exc:  # the deliberate failure: its trace is marked ERROR
        print(f"demo: the deliberate failure raised {type(exc).__name__} (its trace is marked ERROR)")


def run(verbose: bool = False) -> int:
    """Run the demo; returns the exit status.

    Args:
        verbose: Print the last LM call in full (its prompt and response), not just its summary line.
    """
    import dspy_otel
    from dspy_otel._fake_lm import FakeOpenAIServer

    os.environ.setdefault("DSPY_OTEL_PROFILE", "development")
    os.environ.setdefault("OTEL_SERVICE_NAME", "dspy-otel-demo")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    host, port = collector_endpoint()
    file_exporter = None
    if collector_listening(host, port):
        print(f"demo: exporting over OTLP to the collector at {host}:{port}; open http://localhost:16686 (Jaeger)")
    else:
        TRACE_FILE.unlink(missing_ok=True)
        file_exporter = OtlpJsonFileExporter(TRACE_FILE)
        print(
            f"demo: no collector at {host}:{port} ({start_hint(checkout())}); "
            f"falling back to OTLP-JSON in {TRACE_FILE.resolve()} and a summary below"
        )
    dspy_otel.configure(span_exporter=file_exporter)
    with FakeOpenAIServer() as server:
        _program(server.base_url)
    window = current_window()
    last = window.last(1) if window is not None else []
    if verbose:
        print("demo: the last LM call, from dspy-otel's window (dspy_otel.inspect_history(1) in a program):")
        print(format_record(last[0]) if last else "  (none)")
    elif last:
        error = f"\n  Error: {last[0].error}" if last[0].error else ""
        print("demo: the last LM call (`dspy-otel demo --verbose` shows its prompt):")
        print(f"  {summary_line(last[0])}{error}")
    dspy_otel.shutdown()
    if file_exporter is not None:
        traces = len({span.context.trace_id for span in file_exporter.spans})
        print(f"demo: {traces} traces ({len(file_exporter.spans)} spans) written to {TRACE_FILE}:")
        print_trees(file_exporter.spans)
    return 0
