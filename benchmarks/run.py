"""Memory and overhead of tracing DSPy: dspy-otel side by side with DSPy alone and two peers.

One command (standard library only; any Python 3.10+ can run it)::

    python benchmarks/run.py                 # quick: 2,000 calls per process
    python benchmarks/run.py --calls 20000   # the numbers of docs/benchmarks.md
    python benchmarks/run.py --real-path     # spans over OTLP (HTTP and gRPC) to a local receiver

Each configuration (see ``_configs.py``) runs in its own process, in rounds
that alternate the configurations (the order rotates every round); the table
gives medians over the rounds. After the timing rounds, one more process per
configuration measures tracemalloc growth (tracemalloc slows calls, so it is
kept out of the timing rounds). The peers run in their own venv,
``benchmarks/.venv-peers``, created and filled from ``requirements-peers.txt``
on first use; the other configurations run with the project interpreter
(``.venv/bin/python`` when it exists) and ``src/`` on the path. A fake
OpenAI-compatible server and an OTLP receiver that accepts and discards
(``_receiver.py``) run in two more processes for the whole run.

The table is printed (markdown) and written to ``--output``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _configs import BASELINE, BY_NAME, CONFIGS, NULL_EXPORT, REAL_PATH, BenchConfig

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
PEERS_REQUIREMENTS = BENCH / "requirements-peers.txt"
ANSWER_SIZE = 2048
SECOND_REFERENCE = "no-history"
MIB = 1024 * 1024


@dataclass
class Measurements:
    """What the worker processes reported for one configuration."""

    rounds: list[dict[str, Any]] = field(default_factory=list)
    traced: dict[str, Any] | None = None
    error: str = ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_peers_venv(base_python: str) -> Path:
    """Create the peers venv and install the pinned requirements when they changed."""
    python = venv_python(PEERS_VENV)
    marker = PEERS_VENV / "requirements.sha256"
    wanted = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text().strip() == wanted:
        return python
    log(f"installing the peers into {PEERS_VENV.relative_to(ROOT)} (once) ...")
    if not python.exists():
        subprocess.run([base_python, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)], check=True)
    marker.write_text(wanted + "\n")
    return python


def snapshot_source(into: Path) -> tuple[Path, str]:
    """Copy ``src/`` so that every process of the run uses the same code (the tree is shared).

    Returns:
        The copy, to put on ``PYTHONPATH``, and which commit it was taken from.
    """
    commit = git("rev-parse", "--short", "HEAD") or "?"
    if git("status", "--porcelain", "--", "src"):
        commit += " + uncommitted changes in src/"
    copy = into / "src"
    shutil.copytree(ROOT / "src", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy, commit


def worker_env(config: BenchConfig, src: Path) -> dict[str, str]:
    """The environment of a worker: no inherited OTEL_*/DSPY_OTEL_* settings, local cost map."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DSPY_OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.pop("PYTHONPATH", None)
    if config.venv == "project":
        env["PYTHONPATH"] = str(src)
    return env


@contextmanager
def helper_process(python: str, src: Path, *args: str) -> Iterator[str]:
    """Run ``args`` (a script of ``benchmarks/`` and its arguments) in its own process until the block ends.

    The script prints one line once it serves and serves until its standard input closes.

    Yields:
        That line.
    """
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [python, str(BENCH / args[0]), *args[1:]]
    with subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline().strip()
            if not line:
                raise RuntimeError(f"{args[0]} did not start (see its error output above)")
            yield line
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


@contextmanager
def fake_server(python: str, src: Path) -> Iterator[str]:
    """Run ``_server.py`` in its own process; yields its base URL."""
    with helper_process(python, src, "_server.py", str(ANSWER_SIZE)) as url:
        yield url


@dataclass(frozen=True)
class Runner:
    """Starts worker processes: interpreters by venv, the source copy, the server's URL, the sizes."""

    pythons: dict[str, str]
    src: Path
    url: str
    receiver: str
    args: argparse.Namespace

    def worker(self, config: BenchConfig, traced: bool) -> Any:
        """Run one worker process; returns its JSON result or raises with its last error line."""
        command = [self.pythons[config.venv], str(BENCH / "_workload.py"), "--config", config.name]
        command += ["--base-url", self.url, "--receiver", self.receiver]
        command += ["--calls", str(self.args.calls), "--warmup", str(self.args.warmup)]
        if traced:
            command.append("--tracemalloc")
        proc = subprocess.run(command, env=worker_env(config, self.src), capture_output=True, text=True, check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["(no error output)"])[-1]
            raise RuntimeError(f"exit {proc.returncode}: {tail}")
        return json.loads(lines[-1])

    def run(self, config: BenchConfig, into: Measurements, round_number: int | None) -> None:
        """One process for ``config``: a timing round, or the tracemalloc run when ``round_number`` is None.

        A configuration that failed once is not run again; its error goes into the table.
        """
        if into.error:
            return
        what = f"round {round_number}/{self.args.rounds}" if round_number else "tracemalloc"
        started = time.perf_counter()
        try:
            result = self.worker(config, traced=round_number is None)
        except RuntimeError as error:
            into.error = str(error)
            log(f"[{what}] {config.name}: FAILED {error}")
            return
        if round_number is None:
            into.traced = result
            detail = f"tracemalloc +{result['traced_growth'] / MIB:.2f} MiB"
        else:
            into.rounds.append(result)
            detail = (
                f"{result['us_per_call']:.0f} us/call wall, {result['cpu_us_per_call']:.0f} CPU, "
                f"RSS +{result['rss_growth'] / MIB:.2f} MiB"
            )
        log(f"[{what}] {config.name}: {detail} ({time.perf_counter() - started:.0f} s)")


def measure(
    configs: list[BenchConfig], pythons: dict[str, str], src: Path, args: argparse.Namespace
) -> dict[str, Measurements]:
    """Timing rounds (order rotated each round), then one tracemalloc run per configuration."""
    results = {c.name: Measurements() for c in configs}
    with fake_server(pythons["project"], src) as url, helper_process(pythons["project"], src, "_receiver.py") as ports:
        receiver = json.loads(ports)
        runner = Runner(pythons, src, url, f"{receiver['http']},{receiver['grpc']}", args)
        for number in range(args.rounds):
            shift = number % len(configs)
            for config in configs[shift:] + configs[:shift]:
                runner.run(config, results[config.name], number + 1)
        if not args.no_tracemalloc:
            for config in configs:
                runner.run(config, results[config.name], None)
    return results


def median_of(m: Measurements, key: str) -> float | None:
    values = [r[key] for r in m.rounds if r.get(key) is not None]
    return statistics.median(values) if values else None


def percent(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{(value / reference - 1) * 100:+.1f} %"


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.2f} MiB"


def reference(results: dict[str, Measurements], name: str, key: str) -> float | None:
    """The median ``key`` of configuration ``name``, when it was measured."""
    return median_of(results[name], key) if name in results else None


def table(configs: list[BenchConfig], results: dict[str, Measurements]) -> str:
    """The markdown table: one row per configuration."""
    wall_base = reference(results, BASELINE, "us_per_call")
    cpu_base = reference(results, BASELINE, "cpu_us_per_call")
    cpu_second = reference(results, SECOND_REFERENCE, "cpu_us_per_call")
    otlp = any(c.export != "null" for c in configs)  # then the receiver's bytes per call too
    rows = [
        "| Configuration | wall µs/call | wall vs defaults | CPU µs/call | CPU vs defaults "
        "| CPU vs `disable_history` | tracemalloc growth | RSS growth | spans/call |" + (" OTLP bytes/call |" * otlp),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" * otlp),
    ]
    for config in configs:
        m = results[config.name]
        if not m.rounds:
            rows.append(f"| {config.label} | failed: {m.error} |" + " |" * (7 + otlp))
            continue
        wall = median_of(m, "us_per_call")
        cpu = median_of(m, "cpu_us_per_call")
        spans = median_of(m, "spans_per_call")
        cells = [
            config.label,
            "-" if wall is None else f"{wall:,.0f}",
            percent(wall, wall_base),
            "-" if cpu is None else f"{cpu:,.0f}",
            percent(cpu, cpu_base),
            percent(cpu, cpu_second),
            mib(m.traced["traced_growth"]) if m.traced else f"failed: {m.error}" if m.error else "-",
            mib(median_of(m, "rss_growth")),
            "-" if spans is None else f"{spans:.3g}",
        ]
        if otlp:
            sent = median_of(m, "bytes_per_call")
            cells.append("-" if sent is None else f"{sent:,.0f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def git(*args: str) -> str:
    """Output of a git command in the repository ("" when git is missing or fails)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def header(
    results: dict[str, Measurements], args: argparse.Namespace, seconds: float, commit: str, load_before: str
) -> str:
    """Run metadata: sizes, versions, machine, duration."""
    versions: dict[str, str] = {}
    for m in results.values():
        for r in m.rounds:
            versions.update(r.get("versions", {}))
    listed = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    return "\n".join(
        [
            f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, dspy-otel at commit {commit}; "
            f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}",
            f"- {args.calls:,} measured calls per process after {args.warmup} warm-up calls; "
            f"{args.rounds} alternating rounds (medians)"
            f"{'' if args.no_tracemalloc else ' + one tracemalloc run per configuration'}; "
            f"total run time {seconds / 60:.1f} min; load average (1, 5, 15 min) "
            f"{load_before} before, {load_average()} after",
            f"- {listed}",
        ]
    )


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per process (the docs: 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; medians are reported")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls before measuring")
    parser.add_argument(
        "--configs",
        help="comma-separated subset of: " + ", ".join(c.name for c in CONFIGS) + " (default: the null-exporter "
        f"table, {','.join(NULL_EXPORT)})",
    )
    parser.add_argument(
        "--real-path",
        action="store_true",
        help=f"measure the configurations exporting over OTLP and the references ({','.join(REAL_PATH)})",
    )
    default_python = venv_python(ROOT / ".venv")
    parser.add_argument(
        "--python",
        default=str(default_python) if default_python.exists() else sys.executable,
        help="interpreter with dspy and the project's dependencies (default: .venv/bin/python)",
    )
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument(
        "--output", type=Path, help="markdown file (default: benchmarks/results/calls-N.md, calls-N-real-path.md)"
    )
    args = parser.parse_args()
    if args.configs and args.real_path:
        parser.error("--configs and --real-path choose the configurations both: give one of them")
    args.configs = args.configs or ",".join(REAL_PATH if args.real_path else NULL_EXPORT)
    unknown = [name for name in args.configs.split(",") if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}")
    if args.calls < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--calls and --rounds must be at least 1, --warmup at least 0")
    return args


def main() -> None:
    args = parse_args()
    configs = [BY_NAME[name] for name in args.configs.split(",")]
    started = time.perf_counter()
    load_before = load_average()
    pythons = {"project": args.python}
    if any(c.venv == "peers" for c in configs):
        pythons["peers"] = str(ensure_peers_venv(args.python))
    with tempfile.TemporaryDirectory(prefix="dspy-otel-bench-") as tmp:
        src, commit = snapshot_source(Path(tmp))
        results = measure(configs, pythons, src, args)
    seconds = time.perf_counter() - started
    text = f"{header(results, args, seconds, commit, load_before)}\n\n{table(configs, results)}\n"
    output: Path = args.output or BENCH / "results" / f"calls-{args.calls}{'-real-path' * args.real_path}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    log(f"written to {output}")


if __name__ == "__main__":
    main()
