"""What LLM backends type a span by: agents and tools per the GenAI conventions, OpenInference kinds.

- Agents (``dspy.ReAct`` and ``CodeAct`` built on it, ``ReActV2``, ``RLM``,
  ``Avatar``: the DSPy modules that let the model pick tools and run them) get
  ``invoke_agent`` spans: ``gen_ai.operation.name=invoke_agent``,
  ``gen_ai.agent.name`` (the module's name in its parent, else its class) and
  the span name ``invoke_agent {agent name}``. ``ProgramOfThought`` runs code
  it writes but no tools, so it stays a plain module.
- Tools get ``execute_tool`` spans with ``gen_ai.tool.name``,
  ``gen_ai.tool.description``, ``gen_ai.tool.type`` (``function``) and, with
  content capture, ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``.
  A tool call the model made through native function calling and your code runs
  with ``dspy.ToolCalls.ToolCall.execute()`` also carries ``gen_ai.tool.call.id``
  (the only place DSPy hands a call id over).
- No GenAI operation exists for a plain module (``Predict``, ``ChainOfThought``,
  yours): only OpenInference's ``openinference.span.kind`` types it in Phoenix,
  MLflow and Langfuse. With ``DSPY_OTEL_SEMCONV=genai,openinference`` (the
  default) module, agent and tool spans carry the kind (CHAIN, AGENT, TOOL) and,
  with content capture, ``input.value`` / ``output.value`` with their mime
  types. LM spans never do: an OpenInference kind there makes MLflow show a
  chat model as a plain LLM.
"""

from __future__ import annotations

import importlib
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

SPAN_KIND = "openinference.span.kind"
INPUT_VALUE = "input.value"
INPUT_MIME_TYPE = "input.mime_type"
OUTPUT_VALUE = "output.value"
OUTPUT_MIME_TYPE = "output.mime_type"
MIME_TYPE = {INPUT_VALUE: INPUT_MIME_TYPE, OUTPUT_VALUE: OUTPUT_MIME_TYPE}
"""The mime-type attribute of each OpenInference value."""
JSON = "application/json"
TEXT = "text/plain"

_AGENTS = (
    ("dspy.predict.react", "ReAct"),
    ("dspy.predict.react_v2", "ReActV2"),
    ("dspy.predict.rlm", "RLM"),
    ("dspy.predict.avatar.avatar", "Avatar"),
)


def agent_classes() -> tuple[type, ...]:
    """The tool-running DSPy modules this DSPy version has (older versions lack some: no warning)."""
    found = []
    for module, name in _AGENTS:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def agent(attributes: dict[str, Any], cls: type, path: str) -> str:
    """Add the ``invoke_agent`` attributes of an agent module to ``attributes``; return its span name."""
    name = path or cls.__name__
    attributes[gen_ai.GEN_AI_OPERATION_NAME] = gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value
    attributes[gen_ai.GEN_AI_AGENT_NAME] = name
    return f"invoke_agent {name}"


def tool(instance: Any) -> tuple[str, dict[str, Any]]:
    """The name and the ``execute_tool`` attributes of a ``dspy.Tool`` call."""
    name = str(getattr(instance, "name", None) or type(instance).__name__)
    attributes = _tool_attributes(name)
    description = getattr(instance, "desc", None)
    if isinstance(description, str) and description:
        attributes[gen_ai.GEN_AI_TOOL_DESCRIPTION] = description
    return name, attributes


def tool_call(instance: Any) -> tuple[str, dict[str, Any]]:
    """The name and the ``execute_tool`` attributes of a ``dspy.ToolCalls.ToolCall`` run by its ``execute()``."""
    name = str(getattr(instance, "name", None) or "tool")
    attributes = _tool_attributes(name)
    call_id = getattr(instance, "id", None)
    if isinstance(call_id, str) and call_id:
        attributes[gen_ai.GEN_AI_TOOL_CALL_ID] = call_id
    return name, attributes


def _tool_attributes(name: str) -> dict[str, Any]:
    return {
        gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value,
        gen_ai.GEN_AI_TOOL_NAME: name,
        gen_ai.GEN_AI_TOOL_TYPE: "function",
    }
