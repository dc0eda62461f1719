"""No credential ever reaches a byte a real OTLP receiver gets, over gRPC and over HTTP, content capture on or off."""

from __future__ import annotations

from typing import Any

import dspy
import pytest

import dspy_otel
from conftest import closed_port
from dspy_otel._fake_lm import FakeOpenAIServer
from receivers import Received, grpc_receiver, http_receiver

KEY, ENV_KEY, CALL_KEY, HEADER_KEY, PASSWORD = (
    "sk-CANARY-lmkwargs-1a2b",
    "sk-CANARY-environment-3c4d",
    "sk-CANARY-per-call-5e6f",
    "CANARY-bearer-7a8b",
    "CANARY-pass-9c0d",
)
CANARIES = (KEY, ENV_KEY, CALL_KEY, HEADER_KEY, PASSWORD)


class LeakyLM(dspy.BaseLM):  # type: ignore[misc]  # dspy ships no type information
    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        raise PermissionError(f"key {self.kwargs['api_key']} was rejected")


def every_path(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run DSPy with each canary on each path a credential can take."""
    port = fake_server.base_url.rsplit(":", 1)[1]
    lm = dspy.LM(
        "openai/gpt-4o-mini",
        api_base=f"http://alice:{PASSWORD}@127.0.0.1:{port}/v1",
        api_key=KEY,
        extra_headers={"Authorization": f"Bearer {HEADER_KEY}"},
        cache=False,
        num_retries=0,
    )
    dspy.configure(lm=lm)
    program = dspy.ChainOfThought("question -> answer")
    program(question="through dspy.configure")
    with pytest.raises(dspy.LMServerError):
        program(question="please FAIL")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, cache=False, num_retries=0)):
        program(question="key from the environment")
        dspy.settings.lm("per-call key", api_key=CALL_KEY)
    with pytest.raises(dspy.LMError) as refused:  # the URL, password included, is in DSPy's message
        dspy.LM("openai/gpt-4o-mini", api_base=f"http://bob:{PASSWORD}@127.0.0.1:{closed_port()}", num_retries=0)("x")
    assert PASSWORD in str(refused.value)
    with (
        dspy.context(lm=LeakyLM("acme/leaky", api_key=KEY, num_retries=0)),
        pytest.warns(DeprecationWarning, match="custom LMs"),
        pytest.raises(PermissionError, match=KEY),
    ):
        program(question="an error message with the key")
    dspy.configure(lm=None)


@pytest.mark.parametrize("content", ["SPAN_AND_EVENT", "NO_CONTENT"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_no_canary_in_any_byte_a_receiver_gets(
    protocol: str,
    content: str,
    fake_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = grpc_receiver if protocol == "grpc" else http_receiver
    with receiver() as (endpoint, received):
        run_through(endpoint, received, protocol, content, fake_server, monkeypatch)


def run_through(
    endpoint: str,
    received: Received,
    protocol: str,
    content: str,
    fake_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    dspy_otel.configure(capture_content=content, window=10)
    every_path(fake_server, monkeypatch)
    dspy_otel.shutdown()
    wire = b"".join(received.bodies)
    assert b"chat gpt-4o-mini" in wire, "the receiver got the spans"
    assert (b"through dspy.configure" in wire) is (content != "NO_CONTENT")
    leaked = [canary for canary in CANARIES if canary.encode() in wire]
    assert leaked == []
