"""A tiny OpenAI-compatible chat server on 127.0.0.1 for the demo, tests and benchmarks.

It answers ``POST /v1/chat/completions`` the way DSPy's chat adapter expects:
it reads the requested output fields from the prompt and fills each one, so
``dspy.Predict``, ``dspy.ChainOfThought`` and ``dspy.ReAct`` run unchanged
through the real ``dspy.LM`` HTTP path with no network. A question containing
``FAIL`` gets HTTP 500 back; a question containing ``SLOW`` is answered after
:attr:`FakeOpenAIServer.slow_seconds`.

Example:
    >>> from dspy_otel._fake_lm import FakeOpenAIServer
    >>> with FakeOpenAIServer() as server:  # doctest: +SKIP
    ...     lm = dspy.LM("openai/fake-model", api_base=server.base_url, api_key="x")
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_TOOL_LINE = re.compile(r"^\s*\(\d+\) (\w+),", re.MULTILINE)


def _output_fields(system: str) -> list[str]:
    """Names of the output fields listed in a DSPy chat-adapter system message."""
    _, _, after = system.partition("Your output fields are:")
    section = after.split("All interactions will be structured", 1)[0]
    return re.findall(r"^\d+\. `(\w+)`", section, re.MULTILINE)


def _field_value(name: str, system: str, user: str, answer_size: int) -> str:
    """A plausible value for one output field (ReAct picks a tool, then finishes)."""
    if name == "next_tool_name":
        tools = [t for t in _TOOL_LINE.findall(system) if t != "finish"]
        return "finish" if "observation_0" in user or not tools else tools[0]
    if name == "next_tool_args":
        return '{"city": "Paris"}' if "observation_0" not in user else "{}"
    if name == "answer":
        return "42 " + "x" * max(0, answer_size - 3)
    return f"{name} value"


def completion_text(messages: list[dict[str, Any]], answer_size: int = 2) -> str:
    """The assistant message a DSPy chat adapter can parse, for these request messages."""
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    user = str(messages[-1].get("content", "")) if messages else ""
    fields = _output_fields(system) or ["answer"]
    parts = [f"[[ ## {f} ## ]]\n{_field_value(f, system, user, answer_size)}" for f in fields]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        messages = body.get("messages", [])
        text = json.dumps(messages)
        self.server.requests += 1
        with self.server.lock:
            failing, self.server.failures_left = self.server.failures_left > 0, max(0, self.server.failures_left - 1)
        if failing:  # a transient failure that tells the client to retry at once
            self._send(503, {"error": {"message": "overloaded, try again", "type": "server_error"}}, retry_after="0")
            return
        if "FAIL" in text:
            self._send(500, {"error": {"message": "the fake model failed on purpose", "type": "server_error"}})
            return
        if "SLOW" in text:
            time.sleep(self.server.slow_seconds)
        content = completion_text(messages, self.server.answer_size)
        prompt_tokens = max(1, len(text) // 4)
        completion_tokens = max(1, len(content) // 4)
        with self.server.lock:
            self.server.billed = (self.server.billed[0] + prompt_tokens, self.server.billed[1] + completion_tokens)
        self._send(
            200,
            {
                "id": f"chatcmpl-fake-{self.server.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body.get('model', 'fake')}-2025-01-01",
                "choices": [  # as many as asked (``n``), as OpenAI answers
                    {"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    for i in range(body.get("n") or 1)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _send(self, status: int, payload: dict[str, Any], retry_after: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the server quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests = 0
    slow_seconds = 0.0
    answer_size = 2
    billed = (0, 0)  # input and output tokens answered so far
    failures_left = 0  # the next requests to answer 503 (Retry-After: 0), whatever they ask
    lock = threading.Lock()


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, run in a daemon thread.

    Args:
        answer_size: Characters in each ``answer`` field the server returns.
        slow_seconds: Delay before answering a request that contains ``SLOW``.
    """

    def __init__(self, answer_size: int = 2, slow_seconds: float = 0.3) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.answer_size = answer_size
        self._server.slow_seconds = slow_seconds
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def billed_tokens(self) -> tuple[int, int]:
        """The input and output tokens this server has billed so far (its usage figures, summed)."""
        return self._server.billed

    @property
    def base_url(self) -> str:
        """The ``api_base`` to give ``dspy.LM``, e.g. ``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` requests with 503 and ``Retry-After: 0`` (DSPy retries them at once)."""
        with self._server.lock:
            self._server.failures_left = count

    @property
    def requests(self) -> int:
        """How many chat requests the server has answered."""
        return self._server.requests

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
