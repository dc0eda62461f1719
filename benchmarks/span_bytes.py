"""What a dspy-otel span costs on the wire: bytes per span and per call, gzip on and off, attribute by attribute.

Two workloads over the real ``dspy.LM`` HTTP path (``cache=False``) against
``dspy_otel._fake_lm.FakeOpenAIServer(answer_size=2048)`` on 127.0.0.1, with the model
``openai/gpt-4o-mini`` (so DSPy reports a cost, as it does for a real model):

- ``ChainOfThought``: ``dspy.ChainOfThought("question -> answer")``, a 4 KB question and a 2 KB answer
  as in the other benchmarks;
- ``ReAct``: ``dspy.ReAct("question -> answer", tools=[weather])``, one tool call, then ``finish``.

Questions and answers differ from call to call (pseudo-words drawn from a 2,000-word vocabulary with
Zipf weights, seeded: the same in every run): with the other benchmarks' one repeated question, gzip
folds each call's content onto the previous call's and the content would cost next to nothing.

Each configuration runs in a fresh ``dspy_otel.configure(span_exporter=InMemorySpanExporter(), ...)``
(the batch processor included) for enough calls to fill a batch of 512 spans. The spans are encoded
with ``dspy_otel.encoding.encode_spans`` in requests of 512, as the batch processor sends them, and
gzip-compressed at the levels the exporters use (9 for OTLP/HTTP, 6 for gRPC); ``_wire`` reads every
request back with the ``opentelemetry-proto`` classes and puts each byte in a bucket.

Run: ``.venv/bin/python benchmarks/span_bytes.py [--before REV] [--output FILE]`` (about a minute per
tree). ``--before main`` also measures the ``src/`` of that revision (``git archive``) with this same
script and prints both. Each tree is measured in a child process with no ``OTEL_*`` or ``DSPY_OTEL_*``
variable inherited.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import math
import os
import random
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _wire import BATCH, GRPC_GZIP_LEVEL, HTTP_GZIP_LEVEL, AttributeBytes, WireBytes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "span-bytes.md"
WORKLOADS = ("ChainOfThought", "ReAct")
_CONTENT = {"NO_CONTENT": "no content", "SPAN_ONLY": "content"}


def _configs() -> dict[str, dict[str, Any]]:
    """``configure()`` as it comes, then the production profile: content off and on, each semconv, each span mode."""
    configs: dict[str, dict[str, Any]] = {"configure() defaults": {}}
    for spans in ("full", "compact"):
        for capture, content in _CONTENT.items():
            for semconv in ("genai,openinference", "genai"):
                configs[f"production · {content} · {semconv} · {spans}"] = {
                    "profile": "production",
                    "capture_content": capture,
                    "semconv": semconv,
                    "spans": spans,
                }
    return configs


CONFIGS = _configs()
BREAKDOWN = [name for name in CONFIGS if name.endswith(" · full")]
"""The configurations whose attributes are broken down (compact mode moves predictor attributes, adds none)."""


_WORDS = random.Random(0)
VOCABULARY = ["".join(_WORDS.choices(string.ascii_lowercase, k=_WORDS.randint(2, 9))) for _ in range(2000)]
_CUMULATIVE = list(itertools.accumulate(1 / rank for rank in range(1, len(VOCABULARY) + 1)))


def text(seed: str, size: int) -> str:
    """``size`` characters of pseudo-words, the same for the same seed."""
    words = random.Random(seed).choices(VOCABULARY, cum_weights=_CUMULATIVE, k=size // 2)
    return " ".join(words)[:size]


def _vary_answers() -> None:
    """Make the fake server's answers differ per question (it repeats one letter): a 2 KB text seeded by the prompt."""
    from dspy_otel import _fake_lm

    plain = _fake_lm._field_value

    def field_value(name: str, system: str, user: str, answer_size: int) -> str:
        return "42 " + text(user, answer_size - 3) if name == "answer" else plain(name, system, user, answer_size)

    _fake_lm._field_value = field_value


def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"It is sunny in {city}."


def _program(workload: str) -> Callable[[int], Any]:
    """The workload's call number ``i``."""
    import dspy

    from _workload import QUESTION_BYTES

    if workload == "ChainOfThought":
        chain = dspy.ChainOfThought("question -> answer")
        intro = "Summarise the following notes in one word. "
        return lambda i: chain(question=intro + text(f"question {i}", QUESTION_BYTES - len(intro)))
    agent = dspy.ReAct("question -> answer", tools=[weather])
    return lambda i: agent(question=f"What is the weather in {text(f'city {i}', 12).title()}?")


def _measure_one(overrides: dict[str, Any], workload: str) -> tuple[int, WireBytes]:
    """(calls, bytes) of one configuration: enough calls to fill a batch of 512 spans."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import dspy_otel
    from _wire import measure

    exporter = InMemorySpanExporter()
    provider = dspy_otel.configure(span_exporter=exporter, **overrides)
    try:
        call = _program(workload)
        call(0)
        provider.force_flush()
        calls = math.ceil(BATCH / len(exporter.get_finished_spans()))
        for i in range(1, calls):
            call(i)
        provider.force_flush()
        spans = exporter.get_finished_spans()
    finally:
        dspy_otel.shutdown()
    return calls, measure(spans)


def worker() -> None:
    """Measure every configuration and workload in this process; print one JSON document."""
    import dspy

    from dspy_otel._fake_lm import FakeOpenAIServer

    _vary_answers()
    results: dict[str, Any] = {}
    with FakeOpenAIServer(answer_size=2048) as server:
        dspy.configure(lm=dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key="fake", cache=False))
        for name, overrides in CONFIGS.items():
            for workload in WORKLOADS:
                calls, wire = _measure_one(overrides, workload)
                results[f"{name} | {workload}"] = {"calls": calls, "wire": dataclasses.asdict(wire)}
    versions = {name: importlib.metadata.version(name) for name in ("dspy", "opentelemetry-sdk", "protobuf")}
    print(json.dumps({"versions": versions, "results": results}))


Run = dict[str, tuple[int, WireBytes]]


def _loaded(document: dict[str, Any]) -> Run:
    run: Run = {}
    for key, entry in document["results"].items():
        wire = dict(entry["wire"])
        wire["attributes"] = {k: AttributeBytes(**v) for k, v in wire["attributes"].items()}
        run[key] = (entry["calls"], WireBytes(**wire))
    return run


def _measure_tree(src: Path) -> dict[str, Any]:
    """Run the worker with ``src`` first on the path and nothing of ours in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DSPY_OTEL_"))}
    env.update(PYTHONPATH=f"{src}{os.pathsep}{ROOT / 'benchmarks'}", LITELLM_LOCAL_MODEL_COST_MAP="True")
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the worker failed on {src}:\n{done.stderr[-3000:]}")
    document: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return document


def _archived_src(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], check=False, capture_output=True, text=True)
    return done.stdout.strip()


def _change(before: float, after: float) -> str:
    return f"{before:,.0f} → {after:,.0f} ({(after - before) / before:+.0%})" if before else f"{after:,.0f}"


def _summary(after: Run, before: Run | None) -> list[str]:
    head = (
        "| configuration | workload | spans/call | bytes/span | bytes/call, no gzip | gzip-9 (HTTP) | gzip-6 (gRPC) |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    for key, (calls, wire) in after.items():
        name, workload = key.split(" | ")
        cells = [wire.raw / wire.spans, wire.raw / calls, wire.gzip_http / calls, wire.gzip_grpc / calls]
        if before is not None and key in before:
            calls_b, old = before[key]
            olds = [old.raw / old.spans, old.raw / calls_b, old.gzip_http / calls_b, old.gzip_grpc / calls_b]
            shown = [_change(o, n) for o, n in zip(olds, cells, strict=True)]
        else:
            shown = [f"{n:,.0f}" for n in cells]
        lines.append(f"| {name} | {workload} | {wire.spans / calls:g} | {' | '.join(shown)} |")
    return lines


def _gzip_cpu(after: Run) -> list[str]:
    lines = [
        "| configuration | workload | gzip-9 bytes/call | the same, no attributes | gzip-9 µs/call | gzip-6 µs/call |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, (calls, wire) in after.items():
        if key.split(" | ")[0] in BREAKDOWN:
            cells = [wire.gzip_http, wire.gzip_http_bare, wire.gzip_http_cpu_s * 1e6, wire.gzip_grpc_cpu_s * 1e6]
            lines.append(f"| {' | '.join(key.split(' | '))} | {' | '.join(f'{c / calls:,.0f}' for c in cells)} |")
    return lines


def _by_type(after: Run) -> list[str]:
    lines = ["| configuration | workload | LM span | module span | tool span |", "|---|---|---:|---:|---:|"]
    for key, (_, wire) in after.items():
        if key.split(" | ")[0] not in BREAKDOWN:
            continue
        cells = [
            f"{wire.by_type[t][1] / wire.by_type[t][0]:,.0f}" if t in wire.by_type else "-"
            for t in ("LM", "module", "tool")
        ]
        lines.append(f"| {' | '.join(key.split(' | '))} | {' | '.join(cells)} |")
    return lines


def _fixed(after: Run) -> list[str]:
    lines = ["| field | bytes per span |", "|---|---:|"]
    _, wire = after["configure() defaults | ReAct"]
    for name, total in sorted(wire.fixed.items(), key=lambda item: -item[1]):
        lines.append(f"| `{name}` | {total / wire.spans:.1f} |")
    fixed = sum(v for k, v in wire.fixed.items() if k != "events")
    lines.append(f"| **all but attributes and events** | **{fixed / wire.spans:.1f}** |")
    return lines


def _envelope(after: Run) -> str:
    calls, wire = after["configure() defaults | ChainOfThought"]
    return (
        f"Resource, scope and their framing: {wire.envelope / wire.requests:,.0f} bytes per request, "
        f"{wire.envelope / calls:.1f} bytes per `ChainOfThought` call once amortized over {wire.spans} spans."
    )


def _attributes(key: str, after: Run, before: Run | None) -> list[str]:
    calls, wire = after[key]
    old_calls, old = before[key] if before is not None and key in before else (calls, wire)
    names = sorted(
        set(wire.attributes) | set(old.attributes), key=lambda k: -(old.attributes.get(k) or wire.attributes[k]).total
    )
    head = "| attribute | spans/call | key | value | framing | bytes/call" + (" before → after |" if before else " |")
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for name in names:
        shown = old.attributes.get(name) or wire.attributes[name]
        now = wire.attributes.get(name)
        per = [shown.spans / old_calls, shown.key / old_calls, shown.value / old_calls, shown.framing / old_calls]
        total = f"{shown.total / old_calls:,.1f}"
        if before is not None:
            total += f" → {now.total / calls:,.1f}" if now else " → **cut**"
        lines.append(f"| `{name}` | {per[0]:g} | {per[1]:,.1f} | {per[2]:,.1f} | {per[3]:,.1f} | {total} |")
    return lines


def report(after: dict[str, Any], before: dict[str, Any] | None, before_rev: str | None, command: str) -> str:
    """The results file: summary, by span type, fixed cost, envelope, attribute breakdowns."""
    now, old = _loaded(after), _loaded(before) if before else None
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "src", "benchmarks") else ""
    out = [
        "# Bytes on the wire per span and per call",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Commit: `{_git('rev-parse', '--short', 'HEAD')}`{dirty}"
        + (f"; before: `{before_rev}` = `{_git('rev-parse', '--short', before_rev)}`" if before_rev else "")
        + "  ",
        f"Versions: {', '.join(f'{k} {v}' for k, v in after['versions'].items())}",
        "",
        f"Requests of {BATCH} spans, as the batch processor sends them; gzip at level {HTTP_GZIP_LEVEL} (the OTLP "
        f"HTTP exporter's `gzip.GzipFile`) and {GRPC_GZIP_LEVEL} (gRPC's zlib default). "
        + ("Cells read before → after." if old else ""),
        "",
        "## Per call and per span",
        "",
        *_summary(now, old),
        "",
        "## What gzip leaves, and the CPU it takes per call (after)",
        "",
        "The same requests with every span attribute removed show the floor: random span and trace IDs and "
        "timestamps. CPU: `time.process_time()` of `gzip.compress`, best of three per request.",
        "",
        *_gzip_cpu(now),
        "",
        "## Average bytes of one span, by type (after)",
        "",
        *_by_type(now),
        "",
        "## Fixed cost of a span (`configure()` defaults, ReAct, after)",
        "",
        *_fixed(now),
        "",
        _envelope(now),
    ]
    for name in BREAKDOWN:
        for workload in WORKLOADS:
            out += ["", f"## Attributes: {name}, {workload}", "", *_attributes(f"{name} | {workload}", now, old)]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", metavar="REV", help="also measure the src/ of this git revision")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    before = None
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            before = _measure_tree(_archived_src(args.before, Path(tmp)))
    after = _measure_tree(ROOT / "src")
    command = "python benchmarks/span_bytes.py" + (f" --before {args.before}" if args.before else "")
    text = report(after, before, args.before, command)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
