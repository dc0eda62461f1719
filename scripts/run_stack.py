"""Run the collector and Jaeger of the integration tests on localhost, without Docker (``make stack``).

The same binaries as the tests (built once with Go by ``build_otel_binaries.py``,
or found in its cache) run the same ``collector-config/`` files, unchanged,
with the ports ``docker-compose.yml`` publishes:

=====================  ======  ============================================
what                   port    flag
=====================  ======  ============================================
OTLP gRPC              4317    ``--otlp-grpc-port``
OTLP HTTP/protobuf     4318    ``--otlp-http-port``
Jaeger UI and API      16686   ``--ui-port``
Prometheus ``/metrics``  8889  ``--prometheus-port``
collector health       13133   ``--health-port``
collector's own        8888    ``--telemetry-port``
=====================  ======  ============================================

Jaeger's own ports (its OTLP receiver, which the collector exports to, its
health check and telemetry) are free ports on 127.0.0.1 chosen at start, so
nothing collides (both configs default their telemetry to 8888, and the
collector's default exporter endpoint ``jaeger:4317`` is a compose host name).
As with compose, the collector keeps every trace
(``DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT`` defaults to 100 here); every other
``DSPY_OTEL_COLLECTOR_*`` variable of your shell reaches the collector.
Jaeger serves the UI committed in ``collector-build/jaeger-ui/`` (unpacked into
the binaries' cache), since its Go module has none. The processes' output goes
to ``collector.log`` and ``jaeger.log`` in ``--log-dir`` (a new temporary folder
by default). Ctrl-C, SIGTERM or SIGHUP stops both; if either exits on its own,
the other is stopped too and the script exits 1. Only the Python standard
library is used.

Example:
    $ make stack                                   # or: python scripts/run_stack.py
    $ python scripts/run_stack.py --otlp-grpc-port 14317 --ui-port 16687
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; a no-op when run as a script
import build_otel_binaries

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "collector-config"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

# flag name (without --), default port, what it is
PORTS: tuple[tuple[str, int, str], ...] = (
    ("otlp-grpc-port", 4317, "OTLP gRPC"),
    ("otlp-http-port", 4318, "OTLP HTTP/protobuf"),
    ("ui-port", 16686, "Jaeger UI and query API"),
    ("prometheus-port", 8889, "the collector's Prometheus exporter"),
    ("health-port", 13133, "the collector's health check"),
    ("telemetry-port", 8888, "the collector's own telemetry"),
)


@dataclass(frozen=True)
class Ports:
    """Where the stack listens: the public ports on ``host``, Jaeger's internal ones on 127.0.0.1."""

    host: str
    otlp_grpc: int
    otlp_http: int
    ui: int
    prometheus: int
    health: int
    telemetry: int
    jaeger_otlp_grpc: int
    jaeger_otlp_http: int
    jaeger_query_grpc: int
    jaeger_health: int
    jaeger_telemetry: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails now (as the Go servers bind it: with ``SO_REUSEADDR``)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def collector_env(ports: Ports, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables ``collector-config/otel-collector.yaml`` reads, for this stack (the rest from ``environ``)."""
    host = ports.host
    return {
        "DSPY_OTEL_COLLECTOR_OTLP_GRPC_ENDPOINT": f"{host}:{ports.otlp_grpc}",
        "DSPY_OTEL_COLLECTOR_OTLP_HTTP_ENDPOINT": f"{host}:{ports.otlp_http}",
        "DSPY_OTEL_COLLECTOR_HEALTH_ENDPOINT": f"{host}:{ports.health}",
        "DSPY_OTEL_COLLECTOR_PROMETHEUS_ENDPOINT": f"{host}:{ports.prometheus}",
        "DSPY_OTEL_COLLECTOR_METRICS_HOST": host,
        "DSPY_OTEL_COLLECTOR_METRICS_PORT": str(ports.telemetry),
        "DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_grpc}",
        # A local debugging session sees every trace, as with docker-compose.yml; the shell's value wins.
        "DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT": environ.get("DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT") or "100",
    }


def jaeger_env(ports: Ports, ui_assets: Path) -> dict[str, str]:
    """The variables ``collector-config/jaeger.yaml`` reads, for this stack, serving the UI from ``ui_assets``."""
    return {
        "DSPY_OTEL_JAEGER_UI_ASSETS": str(ui_assets),
        "DSPY_OTEL_JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_grpc}",
        "DSPY_OTEL_JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.jaeger_otlp_http}",
        "DSPY_OTEL_JAEGER_QUERY_HTTP_ENDPOINT": f"{ports.host}:{ports.ui}",
        "DSPY_OTEL_JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports.jaeger_query_grpc}",
        "DSPY_OTEL_JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports.jaeger_health}",
        "DSPY_OTEL_JAEGER_METRICS_HOST": "127.0.0.1",
        "DSPY_OTEL_JAEGER_METRICS_PORT": str(ports.jaeger_telemetry),
    }


class StackError(Exception):
    """Why the stack cannot run, in one line for the user."""


def _say(line: str) -> None:
    print(f"stack: {line}", flush=True)


def find_binaries(collector: Path | None, jaeger: Path | None) -> build_otel_binaries.Binaries:
    """The collector and Jaeger (given, cached, or built now with Go: about 10 minutes the first time) and the UI."""
    root = build_otel_binaries.cache_root()
    try:
        jaeger_ui = build_otel_binaries.unpack_jaeger_ui(root)
    except (OSError, RuntimeError) as exc:
        raise StackError(f"the Jaeger UI cannot be unpacked: {exc}") from exc
    if collector is None or jaeger is None:
        cached = build_otel_binaries.collector_path(root), build_otel_binaries.jaeger_path(root)
        if not all(path.is_file() for path in cached):
            go_dir = os.environ.get("GO_DIR", "/usr/local/go/bin")
            go = shutil.which("go") or (shutil.which("go", path=go_dir) if go_dir else None)
            if go is None:
                raise StackError(
                    "the collector and Jaeger are not built yet and Go is not installed (on PATH or in "
                    f"{go_dir or 'GO_DIR'}): install Go 1.26 or newer and run again, or use `docker compose up -d`"
                )
            _say(f"building the collector and Jaeger with Go (about 10 minutes the first time; cached in {root})")
            try:
                built = build_otel_binaries.build_all(go=go, root=root, log=_say)
            except RuntimeError as exc:
                raise StackError(f"the build failed: {exc}") from exc
            cached = built.collector, built.jaeger
        collector, jaeger = collector or cached[0], jaeger or cached[1]
    for path in (collector, jaeger):
        if not path.is_file():
            raise StackError(f"{path} does not exist")
    return build_otel_binaries.Binaries(collector, jaeger, jaeger_ui)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if this script dies without stopping it (Linux; else nothing)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    """A running binary and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of what the process wrote."""
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT_S``; always reaped."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Stack:
    """The collector and Jaeger as child processes, started in order and stopped together."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.stopping = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: ask the main loop to stop."""
        self.stopping = True

    def start(self, name: str, command: list[str], env: Mapping[str, str], health_url: str) -> Child:
        """Start ``command`` in its own session and wait until ``health_url`` answers 200."""
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                command,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script only, which stops the children itself
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads run here
            )
        child = Child(name, popen, log)
        self.children.append(child)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(health_url):
            if popen.poll() is not None:
                raise StackError(f"{name} exited with status {popen.returncode}:\n{child.tail()}")
            if self.stopping:
                raise StackError(f"stopped while {name} was starting")
            if time.monotonic() > deadline:
                raise StackError(
                    f"{name} was not healthy at {health_url} within {START_TIMEOUT_S:.0f} s:\n{child.tail()}"
                )
            time.sleep(0.2)
        return child

    def wait(self) -> int:
        """Until a signal (exit 0) or a child exiting on its own (exit 1)."""
        while not self.stopping:
            for child in self.children:
                if child.popen.poll() is not None:
                    print(
                        f"stack: {child.name} exited with status {child.popen.returncode}:\n{child.tail()}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(self.children):
            child.stop()


def _url_host(host: str) -> str:
    return "localhost" if host in {"127.0.0.1", "0.0.0.0"} else host


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host == "0.0.0.0" else host  # the wildcard is probed on loopback


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 = all)")
    for flag, default, what in PORTS:
        parser.add_argument(f"--{flag}", type=int, default=default, metavar="PORT", help=f"{what} (default {default})")
    parser.add_argument("--log-dir", type=Path, help="where collector.log and jaeger.log go (default: a new temp dir)")
    parser.add_argument("--collector", type=Path, help="the collector binary (default: built or cached)")
    parser.add_argument("--jaeger", type=Path, help="the Jaeger binary (default: built or cached)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack until Ctrl-C, SIGTERM or SIGHUP; returns the exit status."""
    args = parse_args(argv)
    ports = Ports(
        args.host,
        args.otlp_grpc_port,
        args.otlp_http_port,
        args.ui_port,
        args.prometheus_port,
        args.health_port,
        args.telemetry_port,
        *(free_port() for _ in range(5)),
    )
    busy = [
        f"{port} ({what}, --{flag})"
        for flag, _, what in PORTS
        if port_in_use(args.host, port := getattr(args, flag.replace("-", "_")))
    ]
    if busy:
        print(
            f"stack: in use on {args.host}: {', '.join(busy)}. Another stack or `docker compose up` may hold them "
            "(stop it: Ctrl-C or `docker compose down`), or choose other ports with the flags named.",
            file=sys.stderr,
        )
        return 1
    stack = Stack(args.log_dir or Path(tempfile.mkdtemp(prefix="dspy-otel-stack-")))
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stack.on_signal)
    try:
        binaries = find_binaries(args.collector, args.jaeger)
        jaeger = stack.start(
            "jaeger",
            [str(binaries.jaeger), "--config", str(CONFIG_DIR / "jaeger.yaml")],
            jaeger_env(ports, binaries.jaeger_ui),
            f"http://127.0.0.1:{ports.jaeger_health}/status",
        )
        collector = stack.start(
            "collector",
            [str(binaries.collector), "--config", str(CONFIG_DIR / "otel-collector.yaml")],
            collector_env(ports, os.environ),
            f"http://{_probe_host(args.host)}:{ports.health}/",
        )
    except StackError as exc:
        stack.stop()
        print(f"stack: {exc}", file=sys.stderr, flush=True)
        return 1
    host = _url_host(args.host)
    _say(f"Jaeger UI          http://{host}:{ports.ui}")
    _say(f"OTLP               http://{host}:{ports.otlp_grpc} (gRPC), http://{host}:{ports.otlp_http} (HTTP/protobuf)")
    _say(f"metrics            http://{host}:{ports.prometheus}/metrics (Prometheus)")
    _say(f"health             http://{host}:{ports.health}/")
    _say(f"logs               {stack.log_dir}/collector.log, jaeger.log")
    _say(f"processes          collector pid {collector.popen.pid}, jaeger pid {jaeger.popen.pid}")
    endpoint = "" if ports.otlp_grpc == 4317 else f"OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{ports.otlp_grpc} "
    _say(
        f"ready: in another terminal run `{endpoint}dspy-otel demo` (or your program); traces show up in Jaeger "
        "about 10 s after a run (the collector's decision_wait). Ctrl-C stops the stack."
    )
    status = stack.wait()
    _say("stopping")
    stack.stop()
    _say(f"stopped (logs kept in {stack.log_dir})")
    return status


if __name__ == "__main__":
    sys.exit(main())
