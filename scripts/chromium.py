"""Debian's Chromium, headless, as the browser tests and the screenshot scripts start it.

None of Chromium's own connections to Google's hosts: on a closed network they are refused, many at a time,
and slow every start. Only the Python standard library is used.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
