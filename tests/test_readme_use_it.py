"""The quick start (README, docs/getting-started.md) with no collector listening, and its two ways to try it first.

Run as a user runs it (a fresh process, the default settings), against the
fake OpenAI-compatible server instead of OpenAI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import closed_port, env_without_settings

SNIPPET = """
import time
import dspy
import dspy_otel
from dspy_otel._fake_lm import FakeOpenAIServer

with FakeOpenAIServer() as server:
    dspy_otel.configure()
    dspy.configure(lm=dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key="x", cache=False))
    dspy.ChainOfThought("question -> answer")(question="Why is the sky blue?")
    started = time.monotonic()
    dspy_otel.shutdown()
    print(f"shutdown took {time.monotonic() - started:.1f} s")
"""


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "app.py").write_text(SNIPPET)
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        env={**env_without_settings(), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _shutdown_s(stdout: str) -> float:
    (line,) = [line for line in stdout.splitlines() if line.startswith("shutdown took")]
    return float(line.split()[2])


def test_no_collector_means_one_warning_line_and_at_most_5_s_more(tmp_path: Path) -> None:
    done = _run(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, done.stderr  # one per exporter: the spans', the metrics'
    assert all(re.match(r"dspy-otel(\[pid \d+\])?: ", line) for line in lines), done.stderr
    assert re.search(r": \d+ spans could not be exported so far \(last error: .*127\.0\.0\.1", lines[0]), done.stderr
    assert _shutdown_s(done.stdout) <= 6.0  # DSPY_OTEL_EXIT_TIMEOUT_MS = 5 s, plus scheduling


def test_console_exporter_prints_the_spans_with_no_wait(tmp_path: Path) -> None:
    done = _run(tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    assert done.stderr.strip() == ""
    assert _shutdown_s(done.stdout) < 2.0
    decoder = json.JSONDecoder()
    text = done.stdout[done.stdout.index("{") :]
    names = []
    while text.strip().startswith("{"):
        span, end = decoder.raw_decode(text.strip())
        names.append(span["name"])
        text = text.strip()[end:]
    assert len(names) == 2  # the LM call and its module
    assert names[0] == "chat gpt-4o-mini"
