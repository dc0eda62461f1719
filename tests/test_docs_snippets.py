"""Every ``python`` and ``bash`` block of README.md and docs/*.md runs, as a reader would run it.

The blocks of one page run in order, in one temporary directory, each in a fresh process: a Python block as
``python snippet.py``, a shell block with ``bash -e``. The environment is the reader's with no ``OTEL_*`` or
``DSPY_OTEL_*`` setting, plus: the fake OpenAI-compatible server as ``OPENAI_API_BASE`` (DSPy hands such a model
to LiteLLM, which sends it there), the venv's ``bin`` first on ``PATH`` (``python``, ``dspy-otel``), and no
collector (OTLP aimed at a closed port on 127.0.0.1, exit after at most 1 s). A block passes when it exits 0
and prints no traceback.

On the line just above a block, in the Markdown:

- ``<!-- not run: REASON -->`` leaves it out (it needs Docker or a remote backend, runs until Ctrl-C, installs
  from PyPI, ...); the reason is required;
- ``<!-- file: NAME -->`` writes it to ``NAME`` for the blocks after it (``python app.py``) instead of running it;
- ``<!-- output -->`` above a ``text`` block: it is what the block run before it prints on stdout, exactly;
- ``<!-- continues -->``: the block goes on with the program of the block before it, and they run as one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from conftest import closed_port, env_without_settings
from dspy_otel._fake_lm import FakeOpenAIServer

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python", "bash", "sh"}
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- (not run|file|output|continues):?(.*)-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with the marker on the line above it (``None`` when there is none)."""

    page: Path
    line: int
    language: str
    code: str
    marker: str | None
    argument: str

    def where(self) -> str:
        """``docs/sampling.md:42``: the block's opening fence."""
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` that start at the line's beginning, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = _MARKER.match(lines[i - 1]) if i else None
        code = "\n".join(lines[i + 1 : end]) + "\n"
        kind, argument = (marker[1], marker[2].strip()) if marker else (None, "")
        if kind == "continues" and found:
            found[-1] = replace(found[-1], code=found[-1].code + "\n" + code)
        else:
            found.append(Block(page, i + 1, fence[1], code, kind, argument))
        i = end + 1
    return found


def _runs(block: Block) -> bool:
    return block.language in RUNNABLE and block.marker != "not run"


def test_every_marker_stands_above_a_block_and_gives_its_reason_or_file_name() -> None:
    marked = {(b.page, b.line - 1) for page in PAGES for b in blocks(page) if b.marker}
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            if (marker := _MARKER.match(line)) and marker[1] != "continues":  # joined to the block before
                assert (page, number) in marked, f"{page.relative_to(REPO)}:{number}: a marker with no block below"
    for page in PAGES:
        for block in blocks(page):
            if block.marker == "output":
                assert block.language == "text", f"{block.where()}: an output is a text block"
            elif block.marker:
                assert block.argument, f"{block.where()}: say why it is not run, or which file it is"
                assert block.language in RUNNABLE, f"{block.where()}: only python and bash blocks are run"


def test_most_snippets_run() -> None:
    every = [b for page in PAGES for b in blocks(page) if b.language in RUNNABLE]
    assert sum(map(_runs, every)) > len(every) / 2  # the marker is for the exceptions


def test_the_readme_quick_start_is_the_program_getting_started_runs() -> None:
    (readme,) = [b.code for b in blocks(REPO / "README.md") if b.language == "python"]
    (app,) = [b.code for b in blocks(REPO / "docs" / "getting-started.md") if b.argument == "app.py"]
    assert readme == app


def _anchors(page: Path) -> set[str]:
    """The anchors MkDocs gives the headings of ``page``."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {slugify(re.sub(r"[`*]", "", heading), "-") for heading in headings}


def test_the_readme_links_resolve() -> None:
    # MkDocs checks the links of docs/ (--strict); the README is not part of the site, so it is checked here.
    links = re.findall(r"(?<!!)\[[^]]*\]\(([^)#]+)(?:#([^)]+))?\)", (REPO / "README.md").read_text(encoding="utf-8"))
    local = [(target, anchor) for target, anchor in links if "://" not in target]
    assert len(local) > 10
    for target, anchor in local:
        assert (REPO / target).exists(), target
        if anchor:
            assert anchor in _anchors(REPO / target), f"{target}#{anchor}"


@pytest.fixture(scope="module")
def reader_env() -> Iterator[dict[str, str]]:
    """The environment of a reader on a fresh machine, with the fake model as OpenAI and no collector."""
    with FakeOpenAIServer(answer_size=64) as server:
        yield {
            **env_without_settings(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OPENAI_API_BASE": server.base_url,
            "OPENAI_API_KEY": "sk-docs-snippet",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
            "DSPY_OTEL_EXIT_TIMEOUT_MS": "1000",
        }


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if any(map(_runs, blocks(page)))],
    ids=lambda page: str(page.relative_to(REPO)),
)
def test_the_snippets_of_a_page_run(page: Path, reader_env: dict[str, str], tmp_path: Path) -> None:
    output = None
    for block in blocks(page):
        if block.marker == "output":
            assert block.code == output, f"{block.where()}: the block before it prints\n{output}"
            continue
        if not _runs(block):
            continue
        if block.marker == "file":
            (tmp_path / block.argument).write_text(block.code, encoding="utf-8")
            continue
        if block.language == "python":
            (tmp_path / "snippet.py").write_text(block.code, encoding="utf-8")
            command = [sys.executable, "snippet.py"]
        else:
            command = ["bash", "-e", "-c", block.code]
        done = subprocess.run(
            command, cwd=tmp_path, env=reader_env, capture_output=True, text=True, timeout=240, check=False
        )
        assert done.returncode == 0, f"{block.where()} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{block.where()}:\n{done.stderr}"
        output = done.stdout
