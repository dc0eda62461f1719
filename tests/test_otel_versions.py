"""The OpenTelemetry version matrix: dspy-otel's OTLP export on older OpenTelemetry releases.

For each release of :data:`otel_envs.MATRIX` (the floor in ``pyproject.toml`` and one after it), a
subprocess in a venv that ``scripts/otel_envs.py`` builds once and caches in ``~/.cache/dspy-otel/venvs``
runs ``tests/otel_versions_app.py`` on this checkout's ``src/``: every dspy-otel module imported, then a
ChainOfThought and a manual span exported over gRPC and HTTP/protobuf, with each ``otlp_encoder``, to
receivers in this process. A venv that cannot be built (no network) skips its test outside CI and fails
it under ``CI=true``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from packaging.requirements import Requirement

from conftest import env_without_settings, venv_or_skip
from receivers import Received, grpc_receiver, http_receiver

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import otel_envs  # noqa: E402  # scripts/ is not a package

RUNS = ("grpc dspy_otel", "grpc sdk", "http/protobuf dspy_otel", "http/protobuf sdk")
"""Protocol and ``otlp_encoder`` of each export the subprocess makes, each to a receiver of its own."""
PER_CALL = {"gen_ai.response.id"}
"""Attributes that differ from one LM call to the next (the fake server counts its answers)."""
SPANS = ["ChainOfThought", "chat fake-model", "manual", "manual child"]


def spans(received: Received) -> list[dict[str, Any]]:
    """Every span a receiver got, without ids and times: scope, name, parent's name, attributes, events."""
    found = [
        (scope_spans.scope.name, span)
        for request in received.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    names = {span.span_id: span.name for _, span in found}
    return sorted(
        (
            {
                "scope": scope,
                "name": span.name,
                "parent": names.get(span.parent_span_id),
                "kind": span.kind,
                "status": span.status.code,
                "attributes": {a.key: MessageToDict(a.value) for a in span.attributes if a.key not in PER_CALL},
                "events": [(e.name, {a.key: MessageToDict(a.value) for a in e.attributes}) for e in span.events],
            }
            for scope, span in found
        ),
        key=lambda span: str(span["name"]),
    )


def test_the_matrix_starts_at_the_floor() -> None:
    floors = {
        Requirement(line).name: min(spec.version for spec in Requirement(line).specifier)
        for line in metadata.requires("dspy-otel") or []
        if line.startswith("opentelemetry-")
    }
    sdk = min(otel_envs.MATRIX)
    assert floors["opentelemetry-sdk"] == sdk.removesuffix(".0"), "the matrix tests pyproject.toml's floor"
    assert floors["opentelemetry-semantic-conventions"] == otel_envs.MATRIX[sdk]


@pytest.mark.timeout(900)  # building the venv, on a slow shared CI machine
@pytest.mark.parametrize("version", otel_envs.MATRIX)
def test_export_works_on(version: str) -> None:
    python = venv_or_skip(otel_envs.ensure, version, "OpenTelemetry")
    with ExitStack() as stack:
        receivers = {run: stack.enter_context(grpc_receiver() if "grpc" in run else http_receiver()) for run in RUNS}
        env = {**env_without_settings(), "PYTHONPATH": str(ROOT / "src"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        endpoints = json.dumps({run: endpoint for run, (endpoint, _) in receivers.items()})
        command = [str(python), str(ROOT / "tests" / "otel_versions_app.py"), endpoints]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"OpenTelemetry {version}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["versions"]["opentelemetry-sdk"] == version
    assert lines[-1] == {"warnings": [], "loud": []}
    outcomes = {line["key"]: line for line in lines[1:-1]}
    assert list(outcomes) == list(RUNS)
    expected = spans(receivers[RUNS[0]][1])
    assert [span["name"] for span in expected] == SPANS
    assert [span["parent"] for span in expected] == [None, "ChainOfThought", None, "manual"]
    assert expected[2]["events"] == [("checkpoint", {"step": {"intValue": "1"}, "done": {"boolValue": False}})]
    assert len(expected[2]["attributes"]) == 8
    for run, (_, received) in receivers.items():
        assert spans(received) == expected, f"{run} sent other spans than {RUNS[0]}"
        outcome = outcomes[run]
        assert outcome["stats"].get("export_spans_encoder_fallback", 0) == 0
        if run.endswith(" sdk"):
            assert outcome["exporter"].startswith("opentelemetry.exporter.otlp"), outcome
            assert (outcome["encoder_calls"], outcome["ours"]) == (0, []), outcome
        elif run.startswith("grpc"):  # 1.31 and newer: dspy-otel's bytes on the SDK's channel
            assert outcome["exporter"].endswith("EncodedGrpcSpanExporter"), outcome
            assert (outcome["encodes"], outcome["ours"]) == (True, []), outcome
            assert outcome["encoder_calls"] >= 1
        else:  # older than 1.45: the SDK's encoding, said once
            assert outcome["exporter"].endswith("EncodedHttpSpanExporter"), outcome
            assert (outcome["encodes"], outcome["encoder_calls"]) == (False, 0), outcome
            assert len(outcome["ours"]) == 1, outcome
            assert "opentelemetry-exporter-otlp-proto-http has no HTTP client taking bytes" in outcome["ours"][0]
    assert len(receivers["http/protobuf sdk"][1].bodies) > len(receivers["http/protobuf sdk"][1].requests), (
        "no metrics arrived"
    )
