"""GenAI semantic-convention attributes for one DSPy LM call.

Request attributes are read when the call starts (so head samplers see them);
response attributes are read from DSPy's call result, which carries usage,
cost, response model and the cache-hit flag whether or not DSPy keeps history
(DSPy 3.4's ``finalize`` result; before 3.4, the provider response or the
typed ``LMResponse``, read through :class:`CallResult`).
Only whitelisted request parameters are read: credentials never reach a span.

A value that says nothing is left out, as the conventions ask where they speak
of it: ``gen_ai.request.choice.count`` of 1, ``dspy.lm.cache_hit`` unless the
call was a cache hit, ``dspy.lm.class`` for ``dspy.LM`` itself (see
``docs/wire-cost.md``).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import server_attributes as server

from dspy_otel._attributes import CACHE_HIT, LM_CLASS, REQUEST_STREAM, USAGE_COST

_OPERATIONS = {"chat": "chat", "text": "text_completion", "responses": "chat"}
_PARAMS = {
    "temperature": gen_ai.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": gen_ai.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": gen_ai.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": gen_ai.GEN_AI_REQUEST_TOP_P,
    "top_k": gen_ai.GEN_AI_REQUEST_TOP_K,
    "n": gen_ai.GEN_AI_REQUEST_CHOICE_COUNT,
    "num_generations": gen_ai.GEN_AI_REQUEST_CHOICE_COUNT,
    "seed": gen_ai.GEN_AI_REQUEST_SEED,
    "frequency_penalty": gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "stop": gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES,
    "stream": REQUEST_STREAM,
}
_DSPY_LM = ("dspy.clients.lm", "LM")  # (module, qualified name) of dspy.LM, whose class goes unsaid
_INPUT_KEYS = ("prompt_tokens", "input_tokens")
_OUTPUT_KEYS = ("completion_tokens", "output_tokens")


def parse_model(model: str) -> tuple[str | None, str]:
    """Split a DSPy model string into (provider, model): ``openai/gpt-4o-mini`` -> ``("openai", "gpt-4o-mini")``."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep and provider and name else (None, model)


def operation_name(lm: Any) -> str:
    """The GenAI operation for this LM's ``model_type`` (``chat`` unless it is a text-completion model)."""
    return _OPERATIONS.get(str(getattr(lm, "model_type", "chat")), "chat")


def span_name(lm: Any) -> str:
    """``"{gen_ai.operation.name} {gen_ai.request.model}"``, e.g. ``"chat gpt-4o-mini"``."""
    return f"{operation_name(lm)} {parse_model(str(getattr(lm, 'model', '')))[1]}"


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@functools.lru_cache(maxsize=64)
def _server(base: str) -> tuple[str, int | None] | None:
    """Host and port of an ``api_base`` URL; userinfo (credentials) is dropped."""
    parts = urlsplit(base)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


_by_lm: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, Any], dict[str, Any]]] = weakref.WeakKeyDictionary()


def request_attributes(lm: Any, call_kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Attributes known when the call starts: operation, provider, model, parameters, server.

    Worked out once per LM and kept while the LM's model and keyword arguments stay equal to what
    they were built from (a call with keyword arguments of its own is worked out each time). The
    mapping returned is shared: read it, never change it.
    """
    model, kwargs = str(getattr(lm, "model", "")), getattr(lm, "kwargs", None) or {}
    if call_kwargs:
        return _request_attributes(lm, model, {**kwargs, **call_kwargs})
    try:
        cached_model, cached_kwargs, attributes = _by_lm[lm]
        if cached_model == model and cached_kwargs == kwargs:
            return attributes
    except (KeyError, TypeError):
        pass
    attributes = _request_attributes(lm, model, kwargs)
    with contextlib.suppress(TypeError):  # an LM that cannot be weakly referenced is worked out each call
        _by_lm[lm] = (model, dict(kwargs), attributes)
    return attributes


def _request_attributes(lm: Any, model_string: str, merged: Mapping[str, Any]) -> dict[str, Any]:
    provider, model = parse_model(model_string)
    attributes: dict[str, Any] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation_name(lm),
        gen_ai.GEN_AI_REQUEST_MODEL: model,
    }
    cls = type(lm)
    if (cls.__module__, cls.__qualname__) != _DSPY_LM:
        attributes[LM_CLASS] = cls.__qualname__
    if provider:
        attributes[gen_ai.GEN_AI_PROVIDER_NAME] = provider
    for key, value in merged.items():
        attribute = _PARAMS.get(key)
        if attribute is not None and (value := _plain(value)) is not None:
            if attribute == gen_ai.GEN_AI_REQUEST_CHOICE_COUNT and value == 1:
                continue  # the conventions: only when it is not 1
            attributes[attribute] = value
    base = merged.get("api_base") or merged.get("base_url")
    server_info = _server(base) if isinstance(base, str) and base else None
    if server_info is not None:
        attributes[server.SERVER_ADDRESS] = server_info[0]
        if server_info[1]:
            attributes[server.SERVER_PORT] = server_info[1]
    return attributes


def _first_int(usage: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _response_meta(result: Any) -> tuple[str | None, list[str]]:
    """(response id, finish reasons) from native lm15 responses or a provider-shaped raw response."""
    responses = getattr(result, "responses", None) or ()
    if responses:
        reasons = [str(r.finish_reason) for r in responses if getattr(r, "finish_reason", None)]
        return getattr(responses[0], "id", None), reasons
    raw = getattr(result, "raw", None)
    raw_id = raw.get("id") if isinstance(raw, Mapping) else getattr(raw, "id", None)
    choices = (raw.get("choices") if isinstance(raw, Mapping) else getattr(raw, "choices", None)) or ()
    reasons = []
    for choice in choices:
        reason = choice.get("finish_reason") if isinstance(choice, Mapping) else getattr(choice, "finish_reason", None)
        if reason:
            reasons.append(str(reason))
    return (str(raw_id) if raw_id else None), reasons


def result_attributes(result: Any) -> tuple[dict[str, Any], list[str]]:
    """Attributes from DSPy's call result (usage, cost, response model/id, a cache hit) and finish reasons."""
    attributes: dict[str, Any] = {}
    cache_hit = bool(getattr(result, "cache_hit", False))
    if cache_hit:
        attributes[CACHE_HIT] = True
    response_id, reasons = _response_meta(result)
    if response_id:
        attributes[gen_ai.GEN_AI_RESPONSE_ID] = response_id
    if reasons:
        attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    model = getattr(result, "response_model", None)
    if model:
        attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = str(model)
    usage = getattr(result, "usage", None) or {}
    if not cache_hit and isinstance(usage, Mapping):
        for keys, attribute in (
            (_INPUT_KEYS, gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
            (_OUTPUT_KEYS, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            tokens = _first_int(usage, keys)
            if tokens is not None:
                attributes[attribute] = tokens
    cost = getattr(result, "cost", None)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and not cache_hit:
        attributes[USAGE_COST] = float(cost)
    return attributes, reasons


@dataclass(frozen=True, slots=True)
class CallResult:
    """What DSPy < 3.4 hands over for one LM call, in the shape of DSPy 3.4's call result.

    Built by :meth:`from_provider` from the LiteLLM/OpenAI-shaped response ``BaseLM._process_lm_response``
    receives (DSPy 2.6.27 to 3.3), or by :meth:`from_lm_response` from the typed ``dspy.LMResponse``
    ``BaseLM._finalize_lm_response`` receives (DSPy 3.3). :func:`result_attributes` reads either shape.
    """

    raw: Any
    usage: Mapping[str, Any]
    cost: Any
    response_model: Any
    cache_hit: bool
    responses: tuple[Any, ...] = ()

    @classmethod
    def from_provider(cls, response: Any) -> CallResult:
        """Read a provider response: ``.usage``, ``.model``, ``_hidden_params["response_cost"]``, ``.cache_hit``."""
        hidden = getattr(response, "_hidden_params", None)
        return cls(
            raw=response,
            usage=_as_dict(getattr(response, "usage", None)),
            cost=hidden.get("response_cost") if isinstance(hidden, Mapping) else None,
            response_model=getattr(response, "model", None),
            cache_hit=bool(getattr(response, "cache_hit", False)),
        )

    @classmethod
    def from_lm_response(cls, response: Any) -> CallResult:
        """Read a typed ``dspy.LMResponse`` (DSPy 3.3): its usage, cost, model and cache flag."""
        usage_as_dict = getattr(response, "usage_as_dict", None)
        return cls(
            raw=getattr(response, "provider_response", None) or {"id": getattr(response, "response_id", None)},
            usage=usage_as_dict() if callable(usage_as_dict) else _as_dict(getattr(response, "usage", None)),
            cost=getattr(response, "cost", None),
            response_model=getattr(response, "model", None),
            cache_hit=bool(getattr(response, "cache_hit", False)),
        )


def _as_dict(usage: Any) -> Mapping[str, Any]:
    """A usage object (a mapping, a pydantic model, LiteLLM's ``Usage``) as a mapping; ``{}`` if unreadable."""
    if isinstance(usage, Mapping):
        return usage
    try:
        return dict(usage) if usage is not None else {}
    except (TypeError, ValueError):
        return {}
