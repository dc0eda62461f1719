"""``dspy.Evaluate``: a span per example with its metric's result, the aggregate score on the Evaluate span.

DSPy's ``Evaluate`` runs, for each example in a worker thread, the program and
then the metric. The metric runs after the program's span has ended, so each
example gets a span of its own, ``Evaluate example`` (under ``Evaluate``, above
the program's span), which carries the example's index, its score
(``dspy.evaluate.example.score``) and the GenAI conventions'
``gen_ai.evaluation.result`` event: ``gen_ai.evaluation.name`` (the metric's
name), ``gen_ai.evaluation.score.value`` and, for a metric that returns a
boolean, ``gen_ai.evaluation.score.label`` (``pass`` / ``fail``). An example
whose program or metric raised has an ERROR span and an event with
``error.type`` instead of a score. The ``Evaluate`` span carries the metric's
name and the aggregate score DSPy returns (``dspy.evaluate.score``, a percentage).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, Status, StatusCode

from dspy_otel.context._scope import with_scope
from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.instrumentation._spans import suppressed

EXAMPLE_SPAN = "Evaluate example"
EVENT = "gen_ai.evaluation.result"
METRIC = "dspy.evaluate.metric"
"""On the Evaluate span: the metric's name (its function or class name, as DSPy shows it)."""
SCORE = "dspy.evaluate.score"
"""On the Evaluate span: the aggregate score DSPy returns (a percentage)."""
EXAMPLE_INDEX = "dspy.evaluate.example.index"
"""On an example span: the example's position in the devset."""
EXAMPLE_SCORE = "dspy.evaluate.example.score"
"""On an example span: the metric's score for it (booleans as 1.0 / 0.0)."""

_EVALUATION = otel_context.create_key("dspy_otel.evaluation")


@dataclass(frozen=True, slots=True)
class _Evaluation:
    span: Span  # the Evaluate span: its own items, not those of a dspy.Parallel inside the program, are examples
    metric: str
    tracer: trace.Tracer


def metric_name(metric: Any) -> str:
    """The metric's name: its function name (through ``functools.partial``), else its class name."""
    while isinstance(metric, functools.partial):
        metric = metric.func
    name = getattr(metric, "__name__", None)
    return name if isinstance(name, str) else type(metric).__name__


def score_of(result: Any) -> tuple[float | None, str | None]:
    """``(value, label)`` of a metric's result: a number, a boolean (label pass/fail) or an object with ``score``."""
    if isinstance(result, bool):
        return (1.0 if result else 0.0), ("pass" if result else "fail")
    if isinstance(result, (int, float)):
        return float(result), None
    inner = getattr(result, "score", None)  # dspy.Prediction(score=..., feedback=...) as GEPA metrics return
    if inner is not None and not callable(inner) and inner is not result:
        return score_of(inner)
    return None, None


def scored(original: Callable[..., Any], tracer: trace.Tracer) -> Callable[..., Any]:
    """Wrap ``Evaluate.__call__`` (inside its span) so its examples get spans and the span its score."""

    @functools.wraps(original)
    def evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
        context = otel_context.get_current()
        if suppressed(context):  # no Evaluate span: nothing to score
            return original(self, *args, **kwargs)
        span = trace.get_current_span(context)
        metric = kwargs["metric"] if kwargs.get("metric") is not None else (args[1] if len(args) > 1 else None)
        name = metric_name(metric if metric is not None else getattr(self, "metric", None))
        token = otel_context.attach(otel_context.set_value(_EVALUATION, _Evaluation(span, name, tracer), context))
        try:
            result = original(self, *args, **kwargs)
        finally:
            otel_context.detach(token)
        try:
            attributes: dict[str, Any] = {METRIC: name}
            if isinstance(getattr(result, "score", None), (int, float)):
                attributes[SCORE] = float(result.score)
            span.set_attributes(attributes)
        except Exception as exc:
            log_failure_once("recording an evaluation score", exc)
        return result

    return evaluate


def per_example(parent: otel_context.Context, function: Callable[[Any], Any], data: Any) -> Callable[[Any], Any]:
    """``function`` (run on each item by ``ParallelExecutor``) with a span per example when ``Evaluate`` runs it."""
    evaluation = parent.get(_EVALUATION)
    if not isinstance(evaluation, _Evaluation) or trace.get_current_span(parent) is not evaluation.span:
        return function
    indices = {id(item): index for index, item in enumerate(data)} if isinstance(data, Sequence) else {}

    @functools.wraps(function)
    def run_example(item: Any) -> Any:
        attributes = {EXAMPLE_INDEX: indices[id(item)]} if id(item) in indices else {}
        context = otel_context.get_current()
        span = evaluation.tracer.start_span(EXAMPLE_SPAN, context, attributes=with_scope(context, attributes))
        token = otel_context.attach(trace.set_span_in_context(span, context))
        try:
            result = function(item)
        except BaseException as error:
            _record(span, evaluation.metric, None, error)
            raise
        else:
            _record(span, evaluation.metric, result, None)
            return result
        finally:
            otel_context.detach(token)
            span.end()

    return run_example


def _record(span: Span, metric: str, result: Any, error: BaseException | None) -> None:
    """The ``gen_ai.evaluation.result`` event of one example (``result``: what Evaluate's item returned)."""
    if not span.is_recording():
        return
    try:
        event: dict[str, Any] = {gen_ai.GEN_AI_EVALUATION_NAME: metric}
        if error is not None:
            error_type = type(error).__qualname__
            event[error_attributes.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
            span.set_attribute(error_attributes.ERROR_TYPE, error_type)
        else:
            outcome = result[1] if isinstance(result, tuple) and len(result) == 2 else None  # (prediction, score)
            value, label = score_of(outcome)
            if value is not None:
                event[gen_ai.GEN_AI_EVALUATION_SCORE_VALUE] = value
                span.set_attribute(EXAMPLE_SCORE, value)
            if label is not None:
                event[gen_ai.GEN_AI_EVALUATION_SCORE_LABEL] = label
        span.add_event(EVENT, event)
    except Exception as exc:
        log_failure_once("recording an evaluation result", exc)
