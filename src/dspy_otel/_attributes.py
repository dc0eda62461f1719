"""dspy-otel's own span attribute keys (the GenAI ones come from ``opentelemetry.semconv``).

Kept in a module of their own, free of heavy imports, so the samplers can match
on them without loading the instrumentation.
"""

MODULE_CLASS = "dspy.module.class"
"""The qualified class name of the DSPy module a span stands for (``QA``, ``Outer.Inner``)."""
CACHE_HIT = "dspy.lm.cache_hit"
"""``True`` when DSPy answered an LM call from its cache (no tokens billed); absent otherwise."""
LM_CLASS = "dspy.lm.class"
"""The class of the ``dspy.BaseLM`` that made the call, when it is not ``dspy.LM`` (absent for ``dspy.LM``)."""
USAGE_COST = "gen_ai.usage.cost"
"""The LM call's cost in USD, as DSPy reports it (the key Langfuse reads; not in the GenAI conventions)."""
REQUEST_STREAM = "gen_ai.request.stream"
"""``gen_ai_attributes.GEN_AI_REQUEST_STREAM``, which opentelemetry-semantic-conventions has from 0.63b0 only."""
RUN_INPUT_TOKENS = "dspy.run.usage.input_tokens"
"""On a module span: the input tokens billed by every LM call beneath it (cache hits add none)."""
RUN_OUTPUT_TOKENS = "dspy.run.usage.output_tokens"
"""On a module span: the output tokens billed by every LM call beneath it (cache hits add none)."""
RUN_COST = "dspy.run.cost"
"""On a module span: the cost in USD of every LM call beneath it that reported one."""
