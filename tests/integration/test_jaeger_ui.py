"""The Jaeger UI of ``make stack`` in a real browser: what a person sees of the demo's traces.

The stack runs as ``make stack`` runs it (scripts/run_stack.py, on free ports),
``dspy-otel demo`` sends it its traces, and Debian's headless Chromium, driven
by Playwright, opens the UI address the script printed: the search form, the
ReAct trace, the failed trace and the comparison of two traces. Each test saves
a screenshot in ``test-artifacts/jaeger-ui/``. Without Chromium (installed by
scripts/install-prereqs.sh) these tests are skipped, except under ``CI=true``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from conftest import run_demo
from integration.processes import REPO, Binaries, Jaeger, load_script, wait_for
from integration.stack import launch_stack

pytestmark = pytest.mark.integration

CHROMIUM = load_script("chromium").CHROMIUM
CHROMIUM_FLAGS = load_script("chromium").HEADLESS_FLAGS
ARTIFACTS = REPO / "test-artifacts" / "jaeger-ui"
# Every wait ends as soon as the page shows what it waits for; the bound is for a slow, shared CI machine.
UI_TIMEOUT_MS = 60_000
ERROR = 2  # OTLP status code


@dataclass(frozen=True)
class Demo:
    """The demo's traces in the stack's Jaeger, as its API returns them, and the UI's address."""

    ui: str
    service: str
    traces: Mapping[str, Mapping[str, Mapping[str, Any]]]

    def trace_with(self, name: str) -> str:
        """The one trace holding a span called ``name``."""
        (found,) = [tid for tid, spans in self.traces.items() if any(s["name"] == name for s in spans.values())]
        return found

    def failed(self) -> str:
        """The one trace with spans marked ERROR."""
        (found,) = [tid for tid, spans in self.traces.items() if self.errors(tid)]
        return found

    def name_paths(self, trace_id: str) -> set[tuple[str, ...]]:
        """Every span's chain of names from the root (the nodes of the comparison graph)."""
        spans = self.traces[trace_id]

        def path(span: Mapping[str, Any]) -> tuple[str, ...]:
            parent = spans.get(span.get("parentSpanId", ""))
            return (*path(parent), span["name"]) if parent else (span["name"],)

        return {path(span) for span in spans.values()}

    def errors(self, trace_id: str) -> int:
        """How many spans of the trace are marked ERROR."""
        return sum(s.get("status", {}).get("code") == ERROR for s in self.traces[trace_id].values())


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (skipped when it is not installed, except under CI=true)."""
    if not CHROMIUM.is_file():
        message = f"Chromium is not installed at {CHROMIUM} (scripts/install-prereqs.sh installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true the browser test must run")
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``make stack`` on free ports, with the demo's traces in its Jaeger."""
    folder = tmp_path_factory.mktemp("ui-stack")
    stack = launch_stack(binaries, folder, DSPY_OTEL_COLLECTOR_DECISION_WAIT="1s")
    try:
        ui = stack.line(r"Jaeger UI +(\S+)")[1]
        endpoint = stack.line(r"`OTEL_EXPORTER_OTLP_ENDPOINT=(\S+) dspy-otel demo`")[1]
        run_demo(folder, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)  # this Jaeger holds the demo alone
        service = "dspy-otel-demo"  # the demo's default, as a user sees it
        jaeger = Jaeger("", ui)
        wait_for("the demo's 6 traces in Jaeger", lambda: len(jaeger.traces(service)) == 6, timeout_s=60)
        yield Demo(ui, service, jaeger.traces(service))
    finally:
        stack.kill()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new browser tab; its screenshot goes to ``test-artifacts/jaeger-ui/<test name>.png`` after the test."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


def search(page: Page, demo: Demo) -> Locator:
    """Open the printed address, pick the demo's service, press Find Traces; returns the result items."""
    page.goto(demo.ui)
    expect(page).to_have_title("Jaeger UI")
    page.locator('.ant-select[name="service"]').click()
    page.keyboard.type(demo.service)
    page.locator(f'.ant-select-item-option[title="{demo.service}"]').click()
    page.get_by_role("button", name="Find Traces").click()
    results = page.locator(".ResultItem")
    expect(results).to_have_count(len(demo.traces))
    return results


def result(results: Locator, trace_id: str) -> Locator:
    """The search result of one trace (the UI shows the first 7 hex digits of its ID)."""
    return results.filter(has=results.page.locator(".ResultItemTitle--idExcerpt", has_text=trace_id[:7]))


def rows(page: Page) -> list[tuple[str, float]]:
    """The trace view's span rows, top to bottom: each span's name and the x of its label (deeper is further right)."""
    labels = page.locator(".span-row .span-name")
    expect(labels.first).to_be_visible()
    found = []
    for label in labels.all():
        box = label.bounding_box()
        assert box is not None
        found.append((label.locator(".endpoint-name").inner_text().strip(), box["x"]))
    return found


def open_tags(page: Page, span_name: Locator) -> Locator:
    """Click a span in the trace view, then its Tags; returns the tags' table."""
    span_name.click()
    detail = page.locator(".detail-row")
    detail.locator(".AccordianKeyValues--header", has_text="Tags").first.click()
    return detail.locator(".KeyValueTable").first


def tag(table: Locator, key: str) -> Locator:
    """The value shown for ``key`` in a tags table."""
    key_cell = table.page.locator(".KeyValueTable--keyColumn", has_text=re.compile(f"^{re.escape(key)}$"))
    return table.locator(".KeyValueTable--row").filter(has=key_cell).locator(".KeyValueTable--valueColumn .json-markup")


def test_the_printed_address_serves_the_ui_and_finds_the_demo(page: Page, demo: Demo) -> None:
    results = search(page, demo)
    expect(page.get_by_text("This is not the Jaeger UI you are looking for")).to_have_count(0)
    react = result(results, demo.trace_with("invoke_agent ReAct"))
    expect(react.locator(".ResultItemTitle--title")).to_contain_text(f"{demo.service}: invoke_agent ReAct")
    expect(react).to_contain_text(f"{len(demo.traces[demo.trace_with('invoke_agent ReAct')])} Spans")
    errored = results.filter(has_text=re.compile(r"\d+ Errors?"))
    expect(errored).to_have_count(1)
    failed = demo.failed()
    expect(result(errored, failed)).to_contain_text(f"{demo.errors(failed)} Error")


def test_the_react_trace_shows_the_span_tree_and_the_lm_span_tags(page: Page, demo: Demo) -> None:
    react = demo.trace_with("invoke_agent ReAct")
    result(search(page, demo), react).locator(".ResultItemTitle--title").click()
    expect(page).to_have_url(re.compile(f"/trace/{react}"))
    tree = rows(page)
    names = [name for name, _ in tree]
    assert names[:4] == ["invoke_agent ReAct", "Predict react", "chat gpt-4o-mini", "execute_tool _weather"], names
    assert sorted(names) == sorted(span["name"] for span in demo.traces[react].values())
    (react_x, predict_x, chat_x, tool_x) = (x for _, x in tree[:4])
    assert react_x < predict_x < chat_x  # invoke_agent ReAct > Predict react > chat gpt-4o-mini
    assert tool_x == predict_x  # execute_tool _weather: a child of ReAct, beside Predict react

    table = open_tags(page, page.locator(".span-row .span-name", has_text="chat gpt-4o-mini").first)
    expect(page.locator(".detail-row h2")).to_have_text("chat gpt-4o-mini")
    lm_span = next(s for s in demo.traces[react].values() if s["name"] == "chat gpt-4o-mini")
    attributes = {a["key"]: next(iter(a["value"].values())) for a in lm_span["attributes"]}
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.model"):
        expect(tag(table, key)).to_have_text(str(attributes[key]))
    expect(tag(table, "gen_ai.request.model")).to_have_text("gpt-4o-mini")
    tag(table, "gen_ai.usage.input_tokens").scroll_into_view_if_needed()  # for the screenshot


def test_the_failed_trace_carries_the_error_marks(page: Page, demo: Demo) -> None:
    failed = demo.failed()
    result(search(page, demo), failed).locator(".ResultItemTitle--title").click()
    expect(page).to_have_url(re.compile(f"/trace/{failed}"))
    errored = page.locator(".span-row", has=page.locator(".SpanBarRow--errorIcon"))
    expect(errored).to_have_count(demo.errors(failed))
    table = open_tags(page, errored.first.locator(".span-name"))
    expect(tag(table, "error")).to_have_text("true")


def test_two_traces_open_in_the_comparison_page(page: Page, demo: Demo) -> None:
    results = search(page, demo)
    react, failed = demo.trace_with("invoke_agent ReAct"), demo.failed()
    for trace_id in (react, failed):
        result(results, trace_id).locator(".ResultItemTitle input[type=checkbox]").check()
    page.get_by_role("button", name="Compare Traces").click()
    expect(page).to_have_url(re.compile(rf"/trace/({react}\.\.\.{failed}|{failed}\.\.\.{react})"))
    header = page.locator(".TraceDiffHeader")
    expect(header).to_contain_text("invoke_agent ReAct")
    expect(header).to_contain_text("ChainOfThought")
    # One node per distinct chain of span names from the root, in either trace.
    nodes = page.locator(".TraceDiffGraph--graphWrapper .DiffNode")
    expect(nodes).to_have_count(len(demo.name_paths(react) | demo.name_paths(failed)))
    expect(nodes.filter(has_text="execute_tool _weather")).to_be_visible()
