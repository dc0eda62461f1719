"""A traced service whose collector is down, hanging or up: call time, memory, loss counts and exit time.

One command, in the project venv (~5 min on 2 cores with the defaults)::

    .venv/bin/python benchmarks/collector_down.py --calls 50000

Each scenario runs in its own process: ``dspy.Predict`` calls over the real
``dspy.LM`` HTTP path against the fake server (its own process), production
profile, OTLP export to:

- ``up``: a local OTLP receiver that accepts everything, over gRPC and HTTP;
- ``closed port``: nothing listens (connection refused), over gRPC and HTTP;
- ``hanging``: a server that accepts connections and never answers, over gRPC and HTTP.

The worker prints the median wall time per call, tracemalloc growth and RSS
growth after the calls, and ``dspy_otel.stats()``; the orchestrator measures the
time from the worker's last call to its exit (``DSPY_OTEL_EXIT_TIMEOUT_MS`` is
5 s by default) and to the end of dspy-otel's shutdown at exit (the rest is the
interpreter's own teardown), reads the exit line (spans not sent, dropped; spans sent but not
confirmed) and counts the warning lines the worker printed.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

from _receiver import serving
from run import ROOT, fake_server

SCENARIOS = (
    ("up", "grpc"),
    ("up", "http/protobuf"),
    ("closed port", "grpc"),
    ("closed port", "http/protobuf"),
    ("hanging", "grpc"),
    ("hanging", "http/protobuf"),
)


@contextmanager
def collector(kind: str, protocol: str) -> Iterator[int]:
    """A port on 127.0.0.1 that accepts OTLP, refuses connections, or accepts and never answers."""
    if kind == "up":
        with serving() as (http_port, grpc_port, _):
            yield grpc_port if protocol == "grpc" else http_port
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if kind == "closed port":
        sock.close()
        yield port
        return
    sock.listen(1024)  # accepted by the kernel, never read: the exporter waits for its timeout
    try:
        yield port
    finally:
        sock.close()


def worker(url: str, calls: int) -> None:
    import dspy

    import dspy_otel

    # registered before configure(), so it runs after dspy-otel's own shutdown at exit (atexit runs last-in first)
    atexit.register(lambda: print(json.dumps({"shut": time.monotonic()}), flush=True))
    dspy_otel.configure()
    dspy.configure(lm=dspy.LM("openai/gpt-4o-mini", api_base=url, api_key="x", cache=False, num_retries=0))
    program = dspy.Predict("question -> answer")
    for i in range(200):  # warm-up
        program(question=f"warm-up {i}")
    tracemalloc.start()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = tracemalloc.get_traced_memory()[0]
    times = []
    for i in range(calls):
        start = time.perf_counter()
        program(question=f"q{i}")
        times.append(time.perf_counter() - start)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    result = {
        "median_ms": statistics.median(times) * 1e3,
        "p99_ms": statistics.quantiles(times, n=100)[98] * 1e3,
        "tracemalloc_mib": grown / 2**20,
        "rss_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
        "stats": dspy_otel.stats(),
        "done": time.monotonic(),
    }
    print(json.dumps(result), flush=True)


def run(url: str, kind: str, protocol: str, calls: int) -> dict[str, object]:
    with collector(kind, protocol) as port:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DSPY_OTEL_"))},
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'benchmarks'}",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        }
        done = subprocess.run(
            [sys.executable, __file__, "--worker", url, "--calls", str(calls)],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=True,
        )
        exited = time.monotonic()
    *_, last_call, shut = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, object] = last_call
    result["shutdown_s"] = float(shut["shut"]) - float(last_call["done"])
    result["exit_s"] = exited - float(result.pop("done"))  # type: ignore[arg-type]
    for key, pattern in (
        ("dropped_at_exit", "spans not yet sent are dropped"),
        ("unconfirmed", "sent are not confirmed"),
    ):
        at_exit = re.search(rf"([\d,]+) {pattern}", done.stderr)
        result[key] = at_exit.group(1) if at_exit else "0"
    ours = [bool(re.match(r"dspy-otel(\[pid \d+\])?: ", line)) for line in done.stderr.splitlines() if line]
    result["warning_lines"], result["other_lines"] = sum(ours), ours.count(False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--worker", metavar="URL")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.calls)
        return
    print(f"{args.calls:,} dspy.Predict calls per scenario; production profile; one process each")
    print()
    print(
        "| collector | protocol | median ms/call | p99 ms/call | tracemalloc growth | RSS growth | exported |"
        " failed | dropped (queue full) | not sent, dropped at exit | sent, not confirmed at exit"
        " | shutdown done after last call | exit after last call | dspy-otel lines | other lines |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    with fake_server(sys.executable, ROOT / "src") as url:
        for kind, protocol in SCENARIOS:
            r = run(url, kind, protocol, args.calls)
            s = r["stats"]
            assert isinstance(s, dict)
            counts = [s.get(f"export_spans_{n}", 0) for n in ("exported", "failed", "dropped_queue_full")]
            print(
                f"| {kind} | {protocol} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['tracemalloc_mib']:.2f} MiB "
                f"| {r['rss_mib']:.1f} MiB | {' | '.join(f'{c:,}' for c in counts)} | {r['dropped_at_exit']} "
                f"| {r['unconfirmed']} | {r['shutdown_s']:.2f} s | {r['exit_s']:.1f} s "
                f"| {r['warning_lines']} | {r['other_lines']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
