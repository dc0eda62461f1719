"""Runs the fake OpenAI-compatible server in its own process for the benchmark.

Prints the server's base URL on one line, then serves until its standard input
closes (the orchestrator holds the pipe). A separate process keeps the server's
threads and allocations out of the measured process, as a real model server is.

Usage: ``PYTHONPATH=src python benchmarks/_server.py ANSWER_SIZE``
"""

from __future__ import annotations

import sys

from dspy_otel._fake_lm import FakeOpenAIServer


def main() -> None:
    answer_size = int(sys.argv[1])
    with FakeOpenAIServer(answer_size=answer_size) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
