"""Servers ended by SIGTERM with the collector up, refusing or hanging: exit status, time to exit, spans received.

One command, in the project venv (about 4 min on 2 cores)::

    .venv/bin/python benchmarks/sigterm_exit.py > benchmarks/results/sigterm-exit.md

Each server of ``tests/test_deploys.py`` (``uvicorn --workers 2``, gunicorn with 2
uvicorn workers, gunicorn with 2 sync workers, a plain script) serves
``tests/deploy_app.py`` on 127.0.0.1, answers 12 requests (the script makes 12
calls, its tail sampler keeping the 6 that fail), then gets SIGTERM. Nothing is
exported before the signal (batch delay and metric interval 10 min). Rows:

- ``without dspy-otel``: the app does not configure it (the server's own exit status);
- ``flush off``: ``DSPY_OTEL_FLUSH_ON_SIGNALS=false``, collector up (dspy-otel before signals were handled);
- ``up``: an OTLP/HTTP receiver that accepts everything;
- ``closed port``: nothing listens (connection refused);
- ``hanging``: a socket that accepts connections and never answers.

``DSPY_OTEL_EXIT_TIMEOUT_MS`` is its default, 5 s; ``OTEL_EXPORTER_OTLP_TIMEOUT`` is 60 s, so
an export that the exit timeout did not bound would show. Columns: the exit status of the
master, seconds from SIGTERM to its exit, spans the receiver got of those the requests made,
and the dspy-otel lines on stderr.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from run import ROOT

sys.path.insert(0, str(ROOT / "tests"))

from dspy_otel._fake_lm import FakeOpenAIServer
from receivers import otlp_receiver
from test_deploys import SERVERS, run, settings, spans_made  # the tests' runner, shared

ROWS = ("without dspy-otel", "flush off", "up", "closed port", "hanging")


@contextmanager
def collector(row: str) -> Iterator[tuple[str, list[int]]]:
    """The OTLP endpoint for ``row``, and a list that holds the number of spans it received once the block ends."""
    received: list[int] = []
    if row in ("up", "flush off", "without dspy-otel"):
        with otlp_receiver() as receiver:
            yield receiver.endpoint.removesuffix("/v1/traces"), received
            with receiver.lock:
                received.append(len(receiver.records))
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if row == "hanging":
            sock.listen(64)  # connections are accepted by the kernel; nothing ever reads or answers
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", received  # closed port: bound, not listening
    received.append(0)


def main() -> None:
    """Print one Markdown table row per server and collector."""
    print("| server | collector | exit status | SIGTERM to exit | spans received / made | dspy-otel lines |")
    print("|---|---|---|---|---|---|")
    with FakeOpenAIServer() as lm:
        for kind in SERVERS:
            for row in ROWS:
                with collector(row) as (endpoint, received), tempfile.TemporaryDirectory() as tmp:
                    env = {**settings(kind, endpoint), "OTEL_EXPORTER_OTLP_TIMEOUT": "60"}
                    if row == "without dspy-otel":
                        env["DEPLOY_APP_PLAIN"] = "1"
                    if row == "flush off":
                        env["DSPY_OTEL_FLUSH_ON_SIGNALS"] = "false"
                    outcome = run(kind, Path(tmp), lm.base_url, **env)
                lines = [line.strip() for line in outcome.stderr.splitlines() if line.startswith("dspy-otel")]
                made = 0 if row == "without dspy-otel" else spans_made(kind)
                print(
                    f"| {kind} | {row} | {outcome.status} | {outcome.stop_s:.1f} s | {received[0]} / {made} | "
                    f"{'<br>'.join(lines) or '-'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
