"""dspy-otel's own span attribute keys (the GenAI ones come from ``opentelemetry.semconv``).

Kept in a module of their own, free of heavy imports, so the samplers can match
on them without loading the instrumentation.
"""

MODULE_CLASS = "dspy.module.class"
"""The qualified class name of the DSPy module a span stands for (``QA``, ``Outer.Inner``)."""
CACHE_HIT = "dspy.lm.cache_hit"
"""``True`` when DSPy answered an LM call from its cache (no tokens billed)."""
COST = "dspy.lm.cost"
"""The LM call's cost in USD, as DSPy reports it."""
LM_CLASS = "dspy.lm.class"
"""The class of the ``dspy.BaseLM`` that made the call."""
