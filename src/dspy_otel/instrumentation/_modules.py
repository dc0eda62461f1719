"""Who a module span stands for: its name in its parent, its signature, and, when captured, its content.

Two ``Predict`` spans under one module differ by the attribute that holds each
(``triage.classify``): the span is named ``Predict triage.classify``, so Jaeger's
operation list tells them apart, and carries ``dspy.module.name`` and
``dspy.signature`` (``question -> answer``). Both are worked out once per module
instance (the first time it runs) and remembered while the instance lives; a
module that runs at the top level has no name in a parent and keeps its class
name alone.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from opentelemetry import context as otel_context

MODULE_NAME = "dspy.module.name"
"""The attribute path of the module from the top-level module (``triage.classify``)."""
SIGNATURE = "dspy.signature"
"""The predictor's signature (``question -> answer``)."""
INPUTS = "dspy.module.inputs"
"""The module call's keyword inputs as JSON (content capture, ``DSPY_OTEL_SEMCONV=genai``; else ``input.value``)."""
OUTPUTS = "dspy.module.outputs"
"""The module call's outputs as JSON (content capture, ``DSPY_OTEL_SEMCONV=genai``; else ``output.value``)."""

CURRENT = otel_context.create_key("dspy_otel.module")
_identities: weakref.WeakKeyDictionary[Any, tuple[str, str | None]] = weakref.WeakKeyDictionary()


def identity(instance: Any, context: otel_context.Context) -> tuple[str, str | None]:
    """``(name in parent, signature)`` of a module instance called in ``context``, worked out once and remembered."""
    try:
        return _identities[instance]
    except (KeyError, TypeError):
        pass
    parent = context.get(CURRENT)
    found = (_path_in(parent, instance, context) if parent is not None else "", _signature(instance))
    with contextlib.suppress(TypeError):  # a module that cannot be weakly referenced is worked out each time
        _identities[instance] = found
    return found


def span_name(cls: type, path: str) -> str:
    """``Predict triage.classify``, or the class name alone for a top-level module."""
    return f"{cls.__name__} {path}" if path else cls.__name__


def _path_in(parent: Any, instance: Any, context: otel_context.Context) -> str:
    parent_path = identity(parent, context)[0]
    try:
        for name, module in parent.named_sub_modules():
            if module is instance and name != "self":
                relative = name.removeprefix("self.")
                return f"{parent_path}.{relative}" if parent_path else relative
    except Exception:  # a module whose attributes cannot be walked has no name in its parent
        return ""
    return ""


def _signature(instance: Any) -> str | None:
    signature = getattr(instance, "signature", None) or getattr(getattr(instance, "predict", None), "signature", None)
    text = getattr(signature, "signature", None)
    return text if isinstance(text, str) else None


def outputs_dict(outputs: Any) -> Any:
    """A module's outputs as plain data (a ``dspy.Prediction`` becomes its fields)."""
    to_dict = getattr(outputs, "toDict", None)
    return to_dict() if callable(to_dict) else outputs
