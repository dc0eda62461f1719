"""The app ``test_deploys.py`` serves with uvicorn and gunicorn, or runs as a script (not a test module).

Importing it calls ``dspy_otel.configure()`` in the app module, as the README says to,
unless ``DEPLOY_APP_PLAIN=1`` (the same app without dspy-otel, to learn the server's own
exit status). Every request to ``/ask?id=N`` runs ``dspy.Predict`` against the fake
OpenAI-compatible server at ``FAKE_LM_BASE`` with the question ``pid P request N``,
and answers ``P``; ``/ready`` answers at once. ``asgi`` is the ASGI app (uvicorn,
gunicorn with uvicorn workers), ``wsgi`` the WSGI one (gunicorn sync workers).

``python deploy_app.py CALLS``: a plain script that makes ``CALLS`` calls (the odd ones
fail), prints ``ready``, and waits to be ended by a signal.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import dspy

import dspy_otel

if os.environ.get("DEPLOY_APP_PLAIN") != "1":
    dspy_otel.configure()
dspy.configure(
    lm=dspy.LM("openai/gpt-4o-mini", api_base=os.environ["FAKE_LM_BASE"], api_key="k", cache=False, num_retries=0)
)
_predict = dspy.Predict("question -> answer")


def ask(query: str) -> bytes:
    """Run the DSPy program for one request; the answer is this process's pid."""
    (request_id,) = parse_qs(query)["id"]
    _predict(question=f"pid {os.getpid()} request {request_id}")
    return str(os.getpid()).encode()


async def asgi(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    """The ASGI app (lifespan events are acknowledged)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    ready = scope["path"] == "/ready"
    body = b"ready" if ready else await asyncio.to_thread(ask, scope["query_string"].decode())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app."""
    body = b"ready" if environ["PATH_INFO"] == "/ready" else ask(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def main(calls: int) -> None:
    """The plain script: ``calls`` calls, half of them failing, then wait for a signal."""
    for index in range(calls):
        try:
            _predict(question=f"pid {os.getpid()} request {index}{' FAIL' if index % 2 else ''}")
        except Exception:
            if not index % 2:
                raise
    print("ready", flush=True)
    while True:
        time.sleep(0.05)


if __name__ == "__main__":
    main(int(sys.argv[1]))
