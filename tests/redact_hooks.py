"""Redaction hooks that tests name through ``DSPY_OTEL_REDACT=redact_hooks:...``."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def mask_emails(text: str) -> str:
    """Replace every e-mail address with ``<email>``."""
    return EMAIL.sub("<email>", text)


def broken(text: str) -> str:
    """A hook with a bug."""
    raise RuntimeError("the redaction hook broke")
