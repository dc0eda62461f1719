"""The few places dspy-otel hooks into DSPy, each undone exactly by ``uninstrument()``.

1. The span hooks are added to DSPy's global callbacks.
2. The class-level entry points DSPy wraps with ``@with_callbacks``
   (``BaseLM.__call__``/``acall``, ``Module.__call__``/``acall``,
   ``Tool.__call__``/``acall``, ``Evaluate.__call__``) get a thin guard that
   re-adds the hooks when the app has replaced the callbacks
   (``dspy.configure(callbacks=[...])`` or ``dspy.context(callbacks=[...])``).
   Patching classes, not instances, keeps ``copy.deepcopy`` of LMs and programs
   (which optimizers do) traced with nothing to copy.
3. ``dspy.clients.execution.finalize`` is observed: it receives every
   ``BaseLM`` call's result (usage, cost, response model, cache hit) whether or
   not DSPy keeps history, and the hooks copy those onto the LM span.
4. ``ParallelExecutor.execute`` (behind ``dspy.Parallel`` and ``dspy.Evaluate``)
   carries the caller's OpenTelemetry context into its worker threads, so work
   started under a span that is not a DSPy call (a web request, a user span)
   stays in that trace. DSPy's ``ACTIVE_CALL_ID`` covers only DSPy callers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from dspy_otel.instrumentation._hooks import SpanHooks, log_failure_once
from dspy_otel.retention import dspy_defaults

_ENTRY_POINTS = (
    ("dspy.clients.base_lm", "BaseLM", ("__call__", "acall")),
    ("dspy.primitives.module", "Module", ("__call__", "acall")),
    ("dspy.adapters.types.tool", "Tool", ("__call__", "acall")),
    ("dspy.evaluate.evaluate", "Evaluate", ("__call__",)),
)


def _guard(method: Callable[..., Any], hooks: SpanHooks) -> Callable[..., Any]:
    """Wrap a ``@with_callbacks`` method so the hooks are among the active callbacks."""
    from dspy.dsp.utils.settings import settings

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def guarded_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            callbacks = settings.get("callbacks") or []
            if hooks in callbacks:
                return await method(self, *args, **kwargs)
            with settings.context(callbacks=[*callbacks, hooks]):
                return await method(self, *args, **kwargs)

        return guarded_async

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        callbacks = settings.get("callbacks") or []
        if hooks in callbacks:
            return method(self, *args, **kwargs)
        with settings.context(callbacks=[*callbacks, hooks]):
            return method(self, *args, **kwargs)

    return guarded


def _observe_finalize(original: Callable[..., Any], hooks: SpanHooks) -> Callable[..., Any]:
    @functools.wraps(original)
    def finalize(lm: Any, call: Any, result: Any) -> Any:
        hooks.on_lm_result(result)
        return original(lm, call, result)

    return finalize


def _carry_context(original: Callable[..., Any]) -> Callable[..., Any]:
    from opentelemetry import context as otel_context

    @functools.wraps(original)
    def execute(self: Any, function: Callable[..., Any], data: Any) -> Any:
        caller = otel_context.get_current()

        def in_caller_context(item: Any) -> Any:
            token = otel_context.attach(caller)
            try:
                return function(item)
            finally:
                otel_context.detach(token)

        return original(self, in_caller_context, data)

    return execute


def install(hooks: SpanHooks) -> Callable[[], None]:
    """Hook DSPy; return the function that restores every patched attribute exactly."""
    import importlib

    restore: list[tuple[Any, str, Any]] = []
    config = dspy_defaults()
    config["callbacks"] = [*(config.get("callbacks") or []), hooks]
    for module_name, class_name, methods in _ENTRY_POINTS:
        cls = getattr(importlib.import_module(module_name), class_name)
        for name in methods:
            original = cls.__dict__[name]
            restore.append((cls, name, original))
            setattr(cls, name, _guard(original, hooks))
    try:
        execution = importlib.import_module("dspy.clients.execution")
        restore.append((execution, "finalize", execution.finalize))
        execution.finalize = _observe_finalize(execution.finalize, hooks)  # type: ignore[attr-defined]
    except (ImportError, AttributeError) as exc:
        log_failure_once("finding DSPy's call result (usage and cache hits will be missing)", exc)
    try:
        executor = importlib.import_module("dspy.utils.parallelizer").ParallelExecutor
        restore.append((executor, "execute", executor.__dict__["execute"]))
        executor.execute = _carry_context(executor.__dict__["execute"])
    except (ImportError, AttributeError, KeyError) as exc:
        log_failure_once("finding DSPy's parallel executor (user spans will not reach its workers)", exc)

    def uninstall() -> None:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)
        config["callbacks"] = [c for c in config.get("callbacks") or [] if c is not hooks]

    return uninstall
