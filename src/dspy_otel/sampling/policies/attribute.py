"""``attribute:KEY=VALUE``: keep every trace in which a span has attribute ``KEY`` equal to ``VALUE``.

``VALUE`` may use shell wildcards (``gen_ai.request.model=gpt-4o*``); booleans
are written ``true`` / ``false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from dspy_otel.sampling.policies._base import TraceView

NAME = "attribute"


@dataclass(frozen=True)
class AttributePolicy:
    """Keeps a trace with a span whose attribute ``key`` matches ``pattern``."""

    key: str
    pattern: str

    def keeps(self, trace: TraceView) -> bool:
        """Whether any span carries the attribute with a matching value."""
        for span in trace.spans:
            value = (span.attributes or {}).get(self.key)
            if value is not None:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                if fnmatchcase(text, self.pattern):
                    return True
        return False

    def __str__(self) -> str:
        return f"{NAME}:{self.key}={self.pattern}"


def parse(arg: str | None) -> AttributePolicy:
    """``attribute:KEY=VALUE``."""
    key, eq, pattern = (arg or "").partition("=")
    if not eq or not key.strip() or not pattern.strip():
        raise ValueError("allowed: attribute:KEY=VALUE (e.g. attribute:gen_ai.request.model=gpt-4o)")
    return AttributePolicy(key.strip(), pattern.strip())
