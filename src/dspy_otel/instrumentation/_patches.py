"""The few places dspy-otel hooks into DSPy, each undone exactly by ``uninstrument()``.

1. The class-level entry points of DSPy calls (``BaseLM.__call__``/``acall``,
   ``Module.__call__``/``acall``, ``Tool.__call__``/``acall``,
   ``ToolCalls.ToolCall.execute``, ``Evaluate.__call__``) are wrapped to open and close spans. Wrapping classes,
   not instances, keeps ``copy.deepcopy`` of LMs and programs (which optimizers
   do) traced with nothing to copy, and it does not depend on
   ``dspy.settings.callbacks``, which the app may replace at any time. It also
   skips DSPy's callback dispatch (``inspect.getcallargs`` on every module,
   adapter and LM call), which is what makes it cheaper than a callback.
2. Where DSPy hands over each ``BaseLM`` call's result (usage, cost, response
   model, cache hit) whether or not it keeps history, the result is observed and
   the hooks copy it onto the LM span. The place is chosen once, by what the
   installed DSPy has: ``dspy.clients.execution.finalize`` (DSPy 3.4), else
   ``BaseLM._process_lm_response`` (the provider response, DSPy 2.6.27 to 3.3)
   and, where it exists, ``BaseLM._finalize_lm_response`` (the typed
   ``LMResponse`` of DSPy 3.3).
3. ``ParallelExecutor.execute`` (behind ``dspy.Parallel`` and ``dspy.Evaluate``)
   carries the caller's OpenTelemetry context into its worker threads, as DSPy
   already does for its own active call id, so one run stays one trace. Under
   ``Evaluate`` each example also gets a span with its metric's result (``_evaluation``).
4. ``dspy.clients.execution._retryable`` is observed (DSPy 3.4): DSPy asks it after
   every failed attempt of an LM call whether to retry (``_retries``).

A hook this DSPy does not have is named, with what the spans go without, in the
one line :func:`dspy_otel.instrumentation._support.report` logs.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from dspy_otel.instrumentation import _evaluation, _retries, _support
from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.instrumentation._hooks import SpanHooks
from dspy_otel.instrumentation._lm import CallResult
from dspy_otel.instrumentation._spans import Handle

Start = Callable[[Any, tuple[Any, ...], dict[str, Any]], "Handle | None"]
Patch = tuple[Any, str, Any, Any]  # owner, attribute name, original, wrapped
# module, class ("" for a module-level function), attribute, wrapper factory, what the spans lack without it
Target = tuple[str, str, str, Callable[[Any], Callable[..., Any]], str]


def _traced(method: Callable[..., Any], start: Start, hooks: SpanHooks) -> Callable[..., Any]:
    """Wrap ``method`` so each call runs inside a span opened by ``start`` and closed by ``hooks.end``.

    A failure of the telemetry itself is logged once and never reaches the call: the method runs
    without a span when ``start`` fails, and its result or exception is unchanged when ``end`` fails.
    """
    end = hooks.end  # inline below, not in helpers: no extra Python frame on any DSPy call

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                handle = start(self, args, kwargs)
            except Exception as exc:
                log_failure_once("opening a span", exc)
                handle = None
            if handle is None:
                return await method(self, *args, **kwargs)
            try:
                result = await method(self, *args, **kwargs)
            except BaseException as error:
                try:
                    end(handle, None, error)
                except Exception as exc:
                    log_failure_once("closing a span", exc)
                raise
            try:
                end(handle, result, None)
            except Exception as exc:
                log_failure_once("closing a span", exc)
            return result

        return traced_async

    @functools.wraps(method)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            handle = start(self, args, kwargs)
        except Exception as exc:
            log_failure_once("opening a span", exc)
            handle = None
        if handle is None:
            return method(self, *args, **kwargs)
        try:
            result = method(self, *args, **kwargs)
        except BaseException as error:
            try:
                end(handle, None, error)
            except Exception as exc:
                log_failure_once("closing a span", exc)
            raise
        try:
            end(handle, result, None)
        except Exception as exc:
            log_failure_once("closing a span", exc)
        return result

    return traced


def _observe_finalize(original: Callable[..., Any], hooks: SpanHooks) -> Callable[..., Any]:
    @functools.wraps(original)
    def finalize(lm: Any, call: Any, result: Any) -> Any:
        hooks.on_lm_result(result)
        return original(lm, call, result)

    return finalize


def _observe_method(
    original: Callable[..., Any], hooks: SpanHooks, read: Callable[[Any], CallResult], index: int
) -> Callable[..., Any]:
    """Observe a ``BaseLM`` method of DSPy < 3.4 whose positional argument ``index`` is the call's result."""

    @functools.wraps(original)
    def observed(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            hooks.on_lm_result(read(args[index]))
        except Exception as exc:
            log_failure_once("reading LM usage", exc)
        return original(self, *args, **kwargs)

    return observed


_USAGE = "token usage, cost, response model and cache hits on LM spans and metrics"


def _usage_targets(hooks: SpanHooks) -> list[Target]:
    """Where the installed DSPy hands over each LM call's result: chosen once, by what it has."""
    try:
        has_finalize = "finalize" in vars(importlib.import_module("dspy.clients.execution"))
    except ImportError:
        has_finalize = False
    if has_finalize:  # DSPy >= 3.4: one function sees every call's result
        return [("dspy.clients.execution", "", "finalize", functools.partial(_observe_finalize, hooks=hooks), _USAGE)]
    legacy: Target = (
        "dspy.clients.base_lm",
        "BaseLM",
        "_process_lm_response",
        functools.partial(_observe_method, hooks=hooks, read=CallResult.from_provider, index=0),
        _USAGE,
    )
    try:
        typed = "_finalize_lm_response" in vars(importlib.import_module("dspy.clients.base_lm").BaseLM)
    except (ImportError, AttributeError):
        typed = False
    if not typed:  # DSPy 2.6.27 to 3.2: every call's provider response
        return [legacy]
    # DSPy 3.3: the typed path hands over an LMResponse (the legacy path through it, both: the later one wins)
    read_typed = functools.partial(_observe_method, hooks=hooks, read=CallResult.from_lm_response, index=1)
    return [legacy, ("dspy.clients.base_lm", "BaseLM", "_finalize_lm_response", read_typed, "usage on typed LM calls")]


def _traced_evaluate(original: Callable[..., Any], hooks: SpanHooks) -> Callable[..., Any]:
    """``Evaluate.__call__`` in its span, and inside it the examples' spans and scores: one wrapper of ``original``."""
    scored = _evaluation.scored(original, hooks.tracer)
    return functools.update_wrapper(_traced(scored, hooks.start_module, hooks), original)


def _carry_context(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, function: Callable[[Any], Any], data: Any) -> Any:
        parent = otel_context.get_current()
        function = _evaluation.per_example(parent, function, data)

        @functools.wraps(function)
        def in_parent_context(item: Any) -> Any:
            token = otel_context.attach(parent)
            try:
                return function(item)
            finally:
                otel_context.detach(token)

        return original(self, in_parent_context, data)

    return execute


def install(hooks: SpanHooks) -> Callable[[], None]:
    """Hook DSPy; return the function that restores every patched attribute exactly."""
    return apply(patches(hooks))


def patches(hooks: SpanHooks) -> list[Patch]:
    """The wrappers ``hooks`` need, built but not installed (:func:`apply` installs them).

    A hook the installed DSPy does not have is left out and named in one warning (see ``_support``).
    """
    traced_calls: tuple[tuple[str, str, tuple[str, ...], Start, str], ...] = (
        ("dspy.clients.base_lm", "BaseLM", ("__call__", "acall"), hooks.start_lm, "LM spans"),
        (
            "dspy.primitives.module",
            "Module",
            ("__call__", "acall"),
            hooks.start_module,
            "module spans, so each LM call is its own trace",
        ),
        ("dspy.adapters.types.tool", "Tool", ("__call__", "acall"), hooks.start_tool, "tool spans"),
        (
            "dspy.adapters.types.tool",
            "ToolCalls.ToolCall",
            ("execute",),
            hooks.start_tool_call,
            "tool call ids on tool spans",
        ),
    )
    targets: list[Target] = [
        (module_name, class_name, name, functools.partial(_traced, start=start, hooks=hooks), lost)
        for module_name, class_name, names, start, lost in traced_calls
        for name in names
    ]
    evaluate = functools.partial(_traced_evaluate, hooks=hooks)
    retries = functools.partial(_retries.observe, hooks=hooks)
    targets += [
        ("dspy.evaluate.evaluate", "Evaluate", "__call__", evaluate, "Evaluate spans"),
        ("dspy.utils.parallelizer", "ParallelExecutor", "execute", _carry_context, "one trace across Parallel threads"),
        ("dspy.clients.execution", "", "_retryable", retries, "LM retry events and the dspy.lm.retries counter"),
        *_usage_targets(hooks),
    ]
    built: list[Patch] = []
    missing: list[str] = []
    for module_name, class_name, name, wrap, lost in targets:
        try:
            module = importlib.import_module(module_name)
            owner = functools.reduce(getattr, class_name.split("."), module) if class_name else module
            original = owner.__dict__[name]
        except (ImportError, AttributeError, KeyError):
            if not any(gap.startswith(f"{lost} (") for gap in missing):
                missing.append(f"{lost} ({module_name}.{f'{class_name}.' if class_name else ''}{name} not found)")
            continue
        built.append((owner, name, original, wrap(original)))
    _support.report(missing)
    return built


def apply(built: list[Patch]) -> Callable[[], None]:
    """Install wrappers built by :func:`patches`; return the function that restores the originals exactly.

    The same wrappers can be installed again after that (the benchmark switches between configurations
    this way, so that the interpreter sees the same function objects every time, as in a real program).
    """
    for owner, name, _original, wrapped in built:
        setattr(owner, name, wrapped)

    def uninstall() -> None:
        for owner, name, original, _wrapped in reversed(built):
            setattr(owner, name, original)

    return uninstall
