"""The ``dspy-otel`` command.

Commands:
    ``dspy-otel demo``     run a small DSPy program traced end to end (no API key, no network;
                           ``--verbose``: the last LM call's prompt and response too).
    ``dspy-otel config``   print every effective setting, its value and where it came from
                           (``--table``: the Markdown table of all settings).
    ``dspy-otel check``    exit 1 if any environment setting is invalid, naming what is allowed, or any
                           ``DSPY_OTEL_*`` variable is no setting (naming the closest one).
    ``dspy-otel inspect``  print the last LM calls stored in Jaeger, like ``dspy.inspect_history``.

Example:
    $ DSPY_OTEL_PROFILE=staging dspy-otel config
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dspy_otel._inspect_command import add_inspect_parser, run_inspect
from dspy_otel._setup import describe_sampling
from dspy_otel._version import __version__
from dspy_otel.config import TABLE, display, markdown_table, problems, resolve


def _config(args: argparse.Namespace) -> int:
    if args.table:
        print(markdown_table())
        return 0
    settings = resolve({})
    width = max(len(s.env) for s in TABLE)
    print(f"{'setting':<{width}}  {'value':<24}  source")
    for setting in TABLE:
        value = getattr(settings, setting.name)
        print(f"{setting.env:<{width}}  {display(value) or '-':<24}  {settings.sources[setting.name]}")
    print(describe_sampling(settings))
    return 0


def _check(args: argparse.Namespace) -> int:
    found = problems()
    for line in found:
        print(f"invalid: {line}", file=sys.stderr)
    if not found:
        print("dspy-otel: every setting is valid")
    return 1 if found else 0


def _demo(args: argparse.Namespace) -> int:
    from dspy_otel.demo import run

    return run(verbose=args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dspy-otel`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="dspy-otel", description="OpenTelemetry tracing for DSPy.")
    parser.add_argument("--version", action="version", version=f"dspy-otel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a DSPy program traced end to end")
    demo.add_argument("--verbose", action="store_true", help="print the last LM call in full, prompt included")
    demo.set_defaults(run=_demo)
    config = commands.add_parser("config", help="print the effective settings")
    config.add_argument("--table", action="store_true", help="print the table of every setting as Markdown")
    config.set_defaults(run=_config)
    commands.add_parser(
        "check", help="fail on invalid environment settings and misspelled DSPY_OTEL_* names"
    ).set_defaults(run=_check)
    add_inspect_parser(commands).set_defaults(run=run_inspect)
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
