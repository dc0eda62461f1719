"""Small DSPy programs the tests share, and spans of other instrumentations to export with theirs."""

from __future__ import annotations

from typing import Any

import dspy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode


class QA(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """A ChainOfThought (``think``), then a Predict (``check``) on its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.think = dspy.ChainOfThought("question -> answer")
        self.check = dspy.Predict("question, answer -> verdict")

    def forward(self, question: str) -> Any:
        answer = self.think(question=question).answer
        return self.check(question=question, answer=answer)

    async def aforward(self, question: str) -> Any:
        answer = (await self.think.acall(question=question)).answer
        return await self.check.acall(question=question, answer=answer)


def other_instrumentations(provider: TracerProvider, link_to: SpanContext | None = None) -> None:
    """One trace as web instrumentations make it, next to DSPy's: a failed server span and an HTTP client span.

    Other scopes (names, versions, schema URLs), int, float, bool and list attributes, an exception
    event, a link (to ``link_to``, else to a warm-up span in a trace of its own), an error status with
    a description.
    """
    server = provider.get_tracer(
        "opentelemetry.instrumentation.fastapi", "0.51b0", "https://opentelemetry.io/schemas/1.11.0"
    )
    client = provider.get_tracer("opentelemetry.instrumentation.httpx", "0.51b0")
    if link_to is None:
        warm_up = client.start_span("warm-up", kind=SpanKind.CLIENT)
        warm_up.end()
        link_to = warm_up.get_span_context()
    with server.start_as_current_span(
        "GET /items/{item_id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/items/{item_id}",
            "http.response.status_code": 500,
            "server.port": 8000,
            "http.server.request.duration": 0.125,
            "user_agent.synthetic": False,
            "http.request.header.accept": ["application/json", "text/plain"],
            "app.retry_delays_s": [0.5, 1.0, 2.25],
            "app.shard_ids": [3, -7, 2**40],
            "app.flags": [True, False],
            "app.note": "naïve café ✓ \U0001f600",
        },
        links=[Link(link_to, {"app.link.reason": "follows", "app.link.rank": 1})],
    ) as span:
        with client.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={"url.full": "http://127.0.0.1/x"}):
            pass
        span.record_exception(ValueError("item 42 not found"), attributes={"app.item_id": 42})
        span.set_status(Status(StatusCode.ERROR, "item 42 not found"))
