"""Request context: who a run works for, on every span.

Example:
    >>> import dspy_otel
    >>> with dspy_otel.attributes(user_id="u-42", session_id="s-7"):   # doctest: +SKIP
    ...     prediction = program(question="...")

See ``docs/request-context.md``.
"""

from dspy_otel.context._scope import AttributeScope, ContextAttributesProcessor, attributes

__all__ = ["AttributeScope", "ContextAttributesProcessor", "attributes"]
