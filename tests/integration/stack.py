"""``scripts/run_stack.py`` (``make stack``) run as a user runs it, on free ports, for the tests that need it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from integration.processes import REPO, Binaries, free_port, load_script, wait_for

SCRIPT = REPO / "scripts" / "run_stack.py"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def run_stack_module() -> ModuleType:
    """``scripts/run_stack.py`` as a module."""
    return load_script("run_stack")


def free_ports() -> dict[str, int]:
    """A free port for each of the script's port flags."""
    return {flag: free_port() for flag, _, _ in run_stack_module().PORTS}


@dataclass
class RunningStack:
    """The script running in a subprocess, its ports and the file its output goes to."""

    popen: subprocess.Popen[bytes]
    ports: dict[str, int]
    output: Path

    def text(self) -> str:
        """Everything the script printed so far."""
        return self.output.read_text(errors="replace")

    def line(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` in the output (the test fails without one)."""
        found = re.search(pattern, self.text())
        assert found is not None, f"{pattern!r} not in the stack's output:\n{self.text()}"
        return found

    def pids(self) -> tuple[int, int]:
        """The collector's and Jaeger's process IDs, as printed."""
        found = self.line(r"collector pid (\d+), jaeger pid (\d+)")
        return int(found[1]), int(found[2])

    def stop(self, signum: int) -> int:
        """Send ``signum`` and wait for the script's exit status."""
        self.popen.send_signal(signum)
        return self.popen.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """Clean up after a test: kill the script if it still runs (its children die with it)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT_S)


def launch_stack(binaries: Binaries, folder: Path, **env: str) -> RunningStack:
    """Run the script with ``binaries`` on free ports, logging into ``folder``; return once it printed ready."""
    ports = free_ports()
    command = [sys.executable, str(SCRIPT), "--log-dir", str(folder / "logs")]
    command += ["--collector", str(binaries.collector), "--jaeger", str(binaries.jaeger)]
    for flag, port in ports.items():
        command += [f"--{flag}", str(port)]
    output = folder / "stack.out"
    with output.open("wb") as sink:
        popen = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env})
    stack = RunningStack(popen, ports, output)
    try:
        wait_for(
            "the stack's ready line",
            lambda: "stack: ready" in stack.text() or popen.poll() is not None,
            READY_TIMEOUT_S,
        )
        assert popen.poll() is None, stack.text()
    except BaseException:
        stack.kill()
        raise
    return stack
