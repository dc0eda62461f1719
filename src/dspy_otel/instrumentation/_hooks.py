"""Span lifecycles for DSPy modules, LM calls, tools and evaluations.

:class:`SpanHooks` is called by the class-level wrappers in ``_patches``: each
``start_*`` opens a span and makes it current (``_spans.open_span``), each ``end`` closes it. The
handle passed between them is a local of the wrapper, so no per-call state
outlives the call on any path. The one piece of shared state, the LM call in
progress (read when DSPy hands over the call result), is a ``ContextVar``.

A ``ChainOfThought`` span stands for its inner ``Predict`` too: DSPy's
``ChainOfThought`` only adds a reasoning field and calls ``self.predict``, so a
separate ``Predict`` span under it would carry nothing of its own while costing
as much as any span. The LM spans hang directly under ``ChainOfThought``.
Every other ``Predict`` (called by your modules, ``ReAct``, ...) has its span.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind

from dspy_otel._attributes import MODULE_CLASS
from dspy_otel._window import current_window
from dspy_otel.instrumentation import _kinds, _lm, _modules, _outcome, _totals
from dspy_otel.instrumentation._capture import ContentCapture
from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.instrumentation._spans import Handle, LMCall, open_span, suppressed
from dspy_otel.instrumentation._totals import Totals
from dspy_otel.metrics.instruments import Instruments

logger = logging.getLogger("dspy_otel")

_FOLDED = otel_context.create_key("dspy_otel.folded_predictor")
_PREDICTOR = otel_context.create_key("dspy_otel.predictor")  # compact mode: who the next LM span works for
_TOOL_CALL = otel_context.create_key("dspy_otel.tool_call")  # the tool a ToolCall.execute() span stands for
_LM_CALL: ContextVar[Handle | None] = ContextVar("dspy_otel_lm_call", default=None)


class SpanHooks:
    """Turns DSPy module, LM, tool and evaluation calls into spans.

    Args:
        tracer: The tracer spans are created with.
        capture_content: ``NO_CONTENT`` | ``SPAN_ONLY`` | ``EVENT_ONLY`` | ``SPAN_AND_EVENT``.
        content_max_length: Characters kept of each captured content attribute.
        redact: Rewrites each captured text before it is recorded (``None``: as it is).
        instruments: Where LM and module calls are recorded as metrics (``None``: no metrics).
        compact: Predictors open no span of their own; their LM span carries who they are.
        openinference: Module, agent and tool spans also carry OpenInference's span kind and, with
            content capture, ``input.value`` / ``output.value`` (``DSPY_OTEL_SEMCONV``).
        skip_unsampled: The sampler drops every span under an unsampled parent (the parent-based
            samplers, with no tail sampler): below a sampled-out span no SDK span is made at all.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        capture_content: str,
        content_max_length: int,
        *,
        redact: Callable[[str], str] | None = None,
        instruments: Instruments | None = None,
        compact: bool = False,
        openinference: bool = False,
        skip_unsampled: bool = False,
    ) -> None:
        self._tracer = tracer
        self._openinference = openinference
        self._compact = compact
        self._skip_unsampled = skip_unsampled
        self._instruments = instruments
        self._content = ContentCapture(capture_content, content_max_length, redact)
        # A ChainOfThought span stands for its inner Predict; compact mode gives neither a span of its own.
        self._folding = _dspy_classes("dspy.predict.chain_of_thought", "ChainOfThought")
        self._predictors = (*self._folding, *_dspy_classes("dspy.predict.predict", "Predict"))
        self._agents = _kinds.agent_classes()

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer spans are created with."""
        return self._tracer

    @property
    def instruments(self) -> Instruments | None:
        """Where calls are recorded as metrics (``None``: no metrics)."""
        return self._instruments

    def start_module(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle | None:
        """Open an INTERNAL span named after the module's class (``Evaluate`` for evaluations).

        Returns ``None`` (no span) for the ``Predict`` of the ``ChainOfThought`` in progress, and
        inside ``dspy_otel.suppress()`` or any instrumentation suppression.
        """
        context = otel_context.get_current()
        if instance is context.get(_FOLDED) or suppressed(context):
            return None
        cls = type(instance)
        values: dict[str, Any] = {_modules.CURRENT: instance}
        if isinstance(instance, self._folding):
            values[_FOLDED] = getattr(instance, "predict", None)
        path, signature = _modules.identity(instance, context)
        attributes: dict[str, Any] = {MODULE_CLASS: cls.__qualname__}
        if path:
            attributes[_modules.MODULE_NAME] = path
        if signature:
            attributes[_modules.SIGNATURE] = signature
        if self._compact and isinstance(instance, self._predictors):
            values[_PREDICTOR] = attributes  # no span: the LM span carries who the predictor is
            handle = Handle(
                trace.get_current_span(context), otel_context.attach(Context({**context, **values})), owned=False
            )
        else:
            is_agent = isinstance(instance, self._agents)
            name = _kinds.agent(attributes, cls, path) if is_agent else _modules.span_name(cls, path)
            capture = self._content.modes(context)[0]
            if self._openinference:
                attributes[_kinds.SPAN_KIND] = "AGENT" if is_agent else "CHAIN"
            if capture:
                inputs = self._content.module_json(kwargs)
                self._add_value(attributes, _kinds.INPUT_VALUE, inputs, _kinds.JSON, instead=_modules.INPUTS)
            values[_totals.CURRENT] = totals = Totals()
            handle = open_span(self._tracer, name, SpanKind.INTERNAL, attributes, context, values, self._skip_unsampled)
            handle.capture, handle.totals, handle.parent_totals = capture, totals, _totals.current(context)
        if self._instruments is not None:
            handle.module, handle.started_ns = cls.__qualname__, time.perf_counter_ns()
        return handle

    def start_tool(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle | None:
        """Open an ``execute_tool {name}`` span (with content capture, the call's arguments on it).

        None inside the ``ToolCall.execute()`` of the same tool: that span stands for this call.
        """
        context = otel_context.get_current()
        if suppressed(context):
            return None
        name, attributes = _kinds.tool(instance)
        if context.get(_TOOL_CALL) == name:
            return None
        return self._open_tool(name, attributes, kwargs, context, {})

    def start_tool_call(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle | None:
        """Open the ``execute_tool {name}`` span of ``dspy.ToolCalls.ToolCall.execute()``, with the call's id."""
        context = otel_context.get_current()
        if suppressed(context):
            return None
        name, attributes = _kinds.tool_call(instance)
        arguments = getattr(instance, "args", None) or {}
        return self._open_tool(name, attributes, arguments, context, {_TOOL_CALL: name})

    def _open_tool(
        self, name: str, attributes: dict[str, Any], arguments: Any, context: Context, values: dict[str, Any]
    ) -> Handle:
        if self._openinference:
            attributes[_kinds.SPAN_KIND] = "TOOL"
        capture = self._content.modes(context)[0]
        if capture:
            text = attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS] = self._content.module_json(arguments)
            self._add_value(attributes, _kinds.INPUT_VALUE, text, _kinds.JSON)
        handle = open_span(
            self._tracer, f"execute_tool {name}", SpanKind.INTERNAL, attributes, context, values, self._skip_unsampled
        )
        handle.capture, handle.tool = capture, True
        return handle

    def _add_value(
        self, attributes: dict[str, Any], key: str, text: str, mime: str, *, instead: str | None = None
    ) -> None:
        """With the OpenInference conventions on, ``input.value``/``output.value`` (``key``) and its mime type.

        Without them, ``text`` goes under ``instead`` if given (a module's ``dspy.module.inputs`` /
        ``outputs``): a module's content is on its span once, never under both names.
        """
        if self._openinference:
            attributes[key] = text
            attributes[_kinds.MIME_TYPE[key]] = mime
        elif instead is not None:
            attributes[instead] = text

    def _outputs(self, handle: Handle, outputs: Any) -> dict[str, Any]:
        """The captured outputs of a module or tool call, as span attributes."""
        if handle.tool:
            text, mime = self._content.value_text(outputs)
            attributes, instead = {gen_ai.GEN_AI_TOOL_CALL_RESULT: text}, None
        else:
            text, mime = self._content.module_json(_modules.outputs_dict(outputs)), _kinds.JSON
            attributes, instead = {}, _modules.OUTPUTS
        self._add_value(attributes, _kinds.OUTPUT_VALUE, text, mime, instead=instead)
        return attributes

    def start_lm(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle | None:
        """Open the CLIENT span with the request attributes, before the request is sent."""
        context = otel_context.get_current()
        if suppressed(context):
            return None
        call_kwargs = {k: v for k, v in kwargs.items() if k not in ("prompt", "messages")}
        try:
            attributes = _lm.request_attributes(instance, call_kwargs)
            name = f"{attributes[gen_ai.GEN_AI_OPERATION_NAME]} {attributes[gen_ai.GEN_AI_REQUEST_MODEL]}"
        except Exception as exc:
            log_failure_once("reading LM request attributes", exc)
            attributes, name = {}, _lm.span_name(instance)
        predictor = context.get(_PREDICTOR) if self._compact else None
        if isinstance(predictor, dict):
            attributes = {**attributes, **predictor}
        handle = open_span(self._tracer, name, SpanKind.CLIENT, attributes, context, {}, self._skip_unsampled)
        prompt = args[0] if args else kwargs.get("prompt")
        token = _LM_CALL.set(handle)
        handle.call = LMCall(
            instance, prompt, kwargs.get("messages"), call_kwargs, token, time.perf_counter_ns(), attributes
        )
        handle.call.totals = _totals.current(context)
        return handle

    def on_lm_result(self, result: Any) -> None:
        """Put usage, cost, response model and cache hit of the LM call in progress onto its span."""
        handle = _LM_CALL.get()
        if handle is None or handle.call is None:
            return
        if not (handle.span.is_recording() or current_window() is not None or self._instruments is not None):
            return  # sampled out, no window and no metrics: nobody reads them
        try:
            handle.call.attributes, handle.call.finish_reasons = _lm.result_attributes(result)
            handle.span.set_attributes(handle.call.attributes)
            if handle.call.totals is not None:
                handle.call.totals.add_call(handle.call.attributes)
        except Exception as exc:
            log_failure_once("reading LM usage", exc)

    def end(self, handle: Handle, outputs: Any, exception: BaseException | None) -> None:
        """Record the outcome (content and window record for LM calls), end the span, restore the context."""
        try:
            call = handle.call
            if call is not None:
                _LM_CALL.reset(call.token)
                window = current_window()
                modes = self._content.modes(otel_context.get_current())
                if exception is not None or any(modes) or window is not None:
                    self._content.learn(getattr(call.lm, "kwargs", None))
                    self._content.learn(call.kwargs)
                    self._content.record_lm(handle.span, call, outputs, exception, window, modes)
            elif handle.capture and outputs is not None and handle.span.is_recording():
                handle.span.set_attributes(self._outputs(handle, outputs))
        except Exception as exc:
            log_failure_once("recording content", exc)
        finally:
            if self._instruments is not None:
                self._record_metrics(handle, exception)
            if exception is not None:
                try:
                    limit = self._content.limit(handle.span)
                    _outcome.record_error(handle.span, exception, self._content.secrets, limit)
                except Exception as exc:  # whatever happens, the span ends and the context is restored
                    log_failure_once("recording an error", exc)
            if handle.owned:
                if handle.totals is not None:
                    try:
                        handle.totals.finish(handle.span, handle.parent_totals)
                    except Exception as exc:
                        log_failure_once("recording run totals", exc)
                handle.span.end()
            otel_context.detach(handle.token)  # type: ignore[arg-type]

    def _record_metrics(self, handle: Handle, exception: BaseException | None) -> None:
        """Record the call on the metrics, whatever the samplers decided for its span."""
        assert self._instruments is not None
        try:
            error_type = type(exception).__qualname__ if exception is not None else None
            call = handle.call
            if call is not None:
                duration_s = (time.perf_counter_ns() - call.started_ns) / 1e9
                self._instruments.lm_call(call.request, call.attributes, duration_s, error_type)
            elif handle.module is not None:
                duration_s = (time.perf_counter_ns() - handle.started_ns) / 1e9
                self._instruments.module_call(handle.module, duration_s, error_type)
        except Exception as exc:
            log_failure_once("recording metrics", exc)


def _dspy_classes(module: str, name: str) -> tuple[type, ...]:
    """``(dspy_module.name,)``, or ``()`` (logged once) when this DSPy version has no such class."""
    try:
        return (getattr(importlib.import_module(module), name),)
    except (ImportError, AttributeError) as exc:
        log_failure_once(f"finding {module}.{name} in this DSPy version", exc)
        return ()
