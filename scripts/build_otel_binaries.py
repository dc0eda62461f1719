"""Build the OpenTelemetry Collector and Jaeger that the integration tests run, once.

Both come from Go modules, at pinned versions, through the Go module proxy:

- the collector with the collector builder (``go.opentelemetry.io/collector/cmd/builder``)
  from ``collector-build/builder-config.yaml``;
- Jaeger v2 (``github.com/jaegertracing/jaeger/cmd/jaeger``) from the small Go
  module in ``collector-build/jaeger/``, whose ``go.sum`` pins every dependency.

Jaeger's Go module carries no UI, so the UI released with it, built once by
``scripts/build_jaeger_ui.py`` and committed as
``collector-build/jaeger-ui/jaeger-ui-<tag>.tar.xz``, is unpacked (after checking
its SHA-256) into the cache too; ``collector-config/jaeger.yaml`` serves it from
there when ``DSPY_OTEL_JAEGER_UI_ASSETS`` names the folder.

The binaries are cached outside the repository, in ``$DSPY_OTEL_BIN_CACHE`` or
``${XDG_CACHE_HOME:-~/.cache}/dspy-otel/bin``, in folders named by version and by
a digest of the files they are built from, so a second run does nothing and an
edited manifest builds anew. Only the Python standard library is used.

Example:
    $ python scripts/build_otel_binaries.py          # prints durations, then the two paths
    $ python scripts/build_otel_binaries.py --json   # the paths as one JSON object
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

COLLECTOR_VERSION = "0.161.0"
BUILDER_PACKAGE = f"go.opentelemetry.io/collector/cmd/builder@v{COLLECTOR_VERSION}"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_MODULE_VERSION = "v1.76.0"
# Jaeger's Go module keeps v1 tags; v1.76.0 is released together with v2.13.0
# (the jaegertracing/jaeger:2.13.0 image). Jaeger's own build stamps it the same way.
JAEGER_V2_VERSION = "v2.13.0"
_JAEGER_LDFLAGS = f"-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion={JAEGER_V2_VERSION}"
_JAEGER_BUILD_FLAGS = ("-mod=readonly", "-buildvcs=false", "-trimpath", "-ldflags", _JAEGER_LDFLAGS)

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "collector-build" / "builder-config.yaml"
JAEGER_MODULE = REPO / "collector-build" / "jaeger"
# The jaeger-ui release that Jaeger v2.13.0 pins as its `jaeger-ui` submodule (jaeger-ui tags follow the v1 line).
JAEGER_UI_TAG = "v1.76.0"
JAEGER_UI_ARCHIVE = REPO / "collector-build" / "jaeger-ui" / f"jaeger-ui-{JAEGER_UI_TAG}.tar.xz"


@dataclass(frozen=True)
class Binaries:
    """Paths of the built executables.

    Attributes:
        collector: The OpenTelemetry Collector (``otelcol-dspy``).
        jaeger: Jaeger v2 all-in-one.
        jaeger_ui: The folder of the Jaeger UI's assets (``index.html``, ``static/``).
    """

    collector: Path
    jaeger: Path
    jaeger_ui: Path


def cache_root() -> Path:
    """The folder holding every cached build (created on demand)."""
    explicit = os.environ.get("DSPY_OTEL_BIN_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dspy-otel" / "bin"


def _digest(how: str, *paths: Path) -> str:
    """A short digest of how a binary is built and of the files it is built from."""
    sha = hashlib.sha256(how.encode())
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a build command, echoing it; raise with its output when it fails."""
    print("+", " ".join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _install(built: Path, target: Path) -> Path:
    """Move a fresh binary into the cache atomically, so no reader sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(".partial")
    shutil.copy2(built, staging)
    staging.chmod(0o755)
    os.replace(staging, target)
    return target


def collector_path(root: Path) -> Path:
    """Where the collector built from the current manifest is cached."""
    return root / f"otelcol-{COLLECTOR_VERSION}-{_digest(BUILDER_PACKAGE, MANIFEST)}" / "otelcol-dspy"


def jaeger_path(root: Path) -> Path:
    """Where Jaeger built from the current Go module is cached."""
    digest = _digest(" ".join(_JAEGER_BUILD_FLAGS), JAEGER_MODULE / "go.mod", JAEGER_MODULE / "go.sum")
    return root / f"jaeger-{JAEGER_MODULE_VERSION}-{digest}" / "jaeger"


def jaeger_ui_digest_file(archive: Path) -> Path:
    """The ``sha256sum``-style file committed beside a UI archive."""
    return archive.with_name(archive.name + ".sha256")


def _jaeger_ui_digest() -> str:
    return jaeger_ui_digest_file(JAEGER_UI_ARCHIVE).read_text().split()[0]


def jaeger_ui_path(root: Path) -> Path:
    """Where the committed UI archive is unpacked (named by its tag and digest)."""
    return root / f"jaeger-ui-{JAEGER_UI_TAG}-{_jaeger_ui_digest()[:12]}"


def unpack_jaeger_ui(root: Path) -> Path:
    """Unpack the committed Jaeger UI into the cache, unless it is there already.

    Args:
        root: The cache root.

    Returns:
        The folder holding ``index.html`` and ``static/``.

    Raises:
        RuntimeError: The archive does not match its committed SHA-256.
    """
    target = jaeger_ui_path(root)
    if (target / "index.html").is_file():
        return target
    if hashlib.sha256(JAEGER_UI_ARCHIVE.read_bytes()).hexdigest() != _jaeger_ui_digest():
        raise RuntimeError(f"{JAEGER_UI_ARCHIVE} does not match {jaeger_ui_digest_file(JAEGER_UI_ARCHIVE)}")
    root.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="jaeger-ui-", dir=root)
    with tarfile.open(JAEGER_UI_ARCHIVE) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(work, filter="data")
        else:  # Python < 3.10.12, without extraction filters: the archive is the repository's own
            archive.extractall(work)
    try:
        os.replace(work, target)  # atomic: a reader sees all of it or nothing
    except OSError:  # another process unpacked it first
        shutil.rmtree(work)
    return target


def build_collector(go: str, root: Path) -> Path:
    """Build the collector from the builder manifest, unless it is cached.

    Args:
        go: The ``go`` executable.
        root: The cache root.

    Returns:
        The collector executable.
    """
    target = collector_path(root)
    if target.is_file():
        return target
    tools = root / f"builder-v{COLLECTOR_VERSION}"
    builder = tools / "builder"
    if not builder.is_file():
        _run([go, "install", BUILDER_PACKAGE], env={**os.environ, "GOBIN": str(tools)})
    with tempfile.TemporaryDirectory(prefix="otelcol-build-") as work:
        source = Path(work) / "src"
        manifest = Path(work) / "builder-config.yaml"
        text = MANIFEST.read_text()
        manifest.write_text(re.sub(r"(?m)^(\s*output_path:).*$", lambda m: f"{m.group(1)} {source}", text))
        _run([str(builder), "--config", str(manifest)])
        return _install(source / "otelcol-dspy", target)


def build_jaeger(go: str, root: Path) -> Path:
    """Build Jaeger v2 from the pinned Go module, unless it is cached.

    Args:
        go: The ``go`` executable.
        root: The cache root.

    Returns:
        The Jaeger executable.
    """
    target = jaeger_path(root)
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="jaeger-build-") as work:
        built = Path(work) / "jaeger"
        _run([go, "build", *_JAEGER_BUILD_FLAGS, "-o", str(built), JAEGER_PACKAGE], cwd=JAEGER_MODULE)
        return _install(built, target)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_all(go: str | None = None, root: Path | None = None, log: Callable[[str], None] = _to_stderr) -> Binaries:
    """Build (or find cached) both binaries side by side, reporting how long each took, and unpack the UI.

    The two builds run concurrently: on a small machine each spends long
    stretches on one core (linking, large packages), so together they finish
    sooner than one after the other.

    Args:
        go: The ``go`` executable (default: the one on ``PATH``).
        root: The cache root (default: :func:`cache_root`).
        log: Receives one line per binary: its path and the seconds it took.

    Returns:
        The two executables.

    Raises:
        FileNotFoundError: Go is not installed.
        RuntimeError: A build failed (the message holds the tool's output), or the UI archive is damaged.
    """
    go = go or shutil.which("go")
    if go is None:
        raise FileNotFoundError("the Go toolchain (`go`) is not on PATH; it builds the collector and Jaeger")
    root = root or cache_root()

    def timed(name: str, build: Callable[[str, Path], Path]) -> Path:
        started = time.monotonic()
        path = build(go, root)
        log(f"{name}: {path} ({time.monotonic() - started:.1f} s)")
        return path

    jaeger_ui = timed("jaeger UI", lambda _, cache: unpack_jaeger_ui(cache))
    with ThreadPoolExecutor(max_workers=2) as pool:
        collector = pool.submit(timed, "collector", build_collector)
        jaeger = pool.submit(timed, "jaeger", build_jaeger)
        return Binaries(collector.result(), jaeger.result(), jaeger_ui)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build both binaries, unpack the UI and print their paths."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the paths as one JSON object")
    args = parser.parse_args(argv)
    try:
        binaries = build_all()
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"build_otel_binaries: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({key: str(value) for key, value in asdict(binaries).items()}))
    else:
        print(f"collector: {binaries.collector}\njaeger: {binaries.jaeger}\njaeger_ui: {binaries.jaeger_ui}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
