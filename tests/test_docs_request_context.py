"""docs/request-context.md: its Python snippets run, in order, in one fresh process, and do what the page says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import env_without_settings

PAGE = Path(__file__).parent.parent / "docs" / "request-context.md"
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def snippets() -> str:
    return "\n".join(textwrap.dedent(code) for _, code in BLOCK.findall(PAGE.read_text()))


def spans(stdout: str) -> list[dict[str, Any]]:
    """The console exporter's spans (pretty-printed JSON objects) from the program's output."""
    found, decoder, at = [], json.JSONDecoder(), 0
    while (start := stdout.find("{\n", at)) != -1:
        span, at = decoder.raw_decode(stdout, start)
        found.append(span)
    return found


def test_the_snippets_run_and_show_what_the_page_says(tmp_path: Path) -> None:
    (tmp_path / "page.py").write_text(snippets())
    done = subprocess.run(
        [sys.executable, "page.py"],
        cwd=tmp_path,
        env={
            **env_without_settings(),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (trace_line,) = [line for line in done.stdout.splitlines() if line.startswith("trace ")]
    trace_id = trace_line.split()[1]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert "score 100.0" in done.stdout  # the stand-in answers 42
    assert f"INFO answering trace_id={trace_id} span_id=" in done.stderr
    assert "INFO done trace_id=0 span_id=0" in done.stderr
    found = spans(done.stdout)
    attributes = [span["attributes"] for span in found]
    assert any(a.get("user.id") == "u-42" and a.get("plan") == "pro" for a in attributes)
    assert any(a.get("app.route") == "/answer-async" for a in attributes)
    assert any(a.get("dspy_otel.debug") is True for a in attributes)
    assert any(a.get("dspy.lm.attempts") == 3 for a in attributes)
    assert any(a.get("dspy.evaluate.metric") == "exact" for a in attributes)
    assert any(a.get("app.phase") == "compile" for a in attributes)
    events = {event["name"] for span in found for event in span["events"]}
    assert {"dspy.lm.attempt_failed", "gen_ai.evaluation.result"} <= events
