"""Every setting dspy-otel reads: one table, resolved once into a frozen :class:`Settings`.

Precedence for each setting: explicit ``configure()`` argument > environment
variable > profile default > package default. An empty environment variable
counts as unset. A bad explicit argument raises :class:`ValueError`; a bad
environment value logs one line (the variable, the value, what is allowed,
what is used instead) and falls back, so a typo never stops a service.

- :mod:`~dspy_otel.config._table` — :data:`TABLE` and :class:`Settings`; the rows (one
  :class:`~dspy_otel.config._setting.Setting` each) by area in ``_table_spans``, ``_table_sampling``,
  ``_table_export`` and ``_table_process``;
- :mod:`~dspy_otel.config._parse` — the value parsers the rows name;
- :mod:`~dspy_otel.config._resolve` — :func:`resolve`, the precedence walk, :func:`problems` and misspelled names;
- :mod:`~dspy_otel.config._display` — values and the table as ``dspy-otel config`` and the documentation show them.

Example:
    >>> from dspy_otel.config import resolve
    >>> resolve({"profile": "development"}, env={}).capture_content
    'SPAN_ONLY'
"""

from dspy_otel.config._display import display, markdown_table
from dspy_otel.config._resolve import problems, rejected, resolve, unknown_names
from dspy_otel.config._table import TABLE, Settings

__all__ = [
    "TABLE",
    "Settings",
    "display",
    "markdown_table",
    "problems",
    "rejected",
    "resolve",
    "unknown_names",
]
