"""MkDocs hook: the Sphinx roles of the docstrings (:func:`x`, :class:`~a.b`) shown as plain code on the site.

mkdocstrings renders ``:func:`shutdown``` as ``:func:<code>shutdown</code>``; this drops the role (and the ``~``
that shortens a path), as Sphinx would show it.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>~?")


def on_post_page(output: str, **kwargs: object) -> str:
    """Drop the Sphinx roles from the page's HTML."""
    return _ROLE.sub("<code>", output)
