"""Rebuild the committed Jaeger UI archive from jaeger-ui's tagged source (a maintainer's tool, not run by CI).

The Jaeger binary that ``build_otel_binaries.py`` builds from its Go module has
no UI in it, so the repository carries the UI that ships with that Jaeger
release, built: ``collector-build/jaeger-ui/jaeger-ui-<tag>.tar.xz`` (the
``build/`` folder of jaeger-ui's ``packages/jaeger-ui`` plus jaeger-ui's
Apache-2.0 ``LICENSE``) and its SHA-256 beside it. This script makes both
again: it clones jaeger-ui at the tag into ``BUILD_DIR`` (always the same
folder: the bundle records one absolute path of the build, so the same folder
is what makes a rebuild give the same bytes), checks the commit is the one
Jaeger's repository pins as its ``jaeger-ui`` submodule, installs the locked npm
packages with ``npm ci``, runs ``npm run build`` and packs the result
reproducibly (sorted names, no owners or dates). Node 20.19 or newer and npm
are needed (jaeger-ui asks for Node 24; the build works on 20, so the engine
check is turned off). Only the Python standard library is used.

Example:
    $ python scripts/build_jaeger_ui.py                                 # clone from GitHub, build, pack
    $ python scripts/build_jaeger_ui.py --repository ~/src/jaeger-ui    # clone a local clone instead
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; a no-op when run as a script
import build_otel_binaries as binaries

UI_REPOSITORY = "https://github.com/jaegertracing/jaeger-ui.git"
# `git ls-tree v2.13.0 jaeger-ui` in github.com/jaegertracing/jaeger: the submodule commit, tagged v1.76.0.
UI_COMMIT = "1ceadb6f6fb29774bfaa77a6148499ff7a04902b"
BUILD_DIR = Path("/tmp/dspy-otel-jaeger-ui/jaeger-ui")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a step, echoing it; raise with its output when it fails."""
    print("+", " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def build(source: Path) -> Path:
    """Install jaeger-ui's locked packages and build it; returns the folder of built assets."""
    commit = _run(["git", "rev-parse", "HEAD"], source).strip()
    if commit != UI_COMMIT:
        raise RuntimeError(f"{source} is at {commit}, not at {binaries.JAEGER_UI_TAG} ({UI_COMMIT})")
    env = {**os.environ, "npm_config_engine_strict": "false", "npm_config_audit": "false", "npm_config_fund": "false"}
    _run(["npm", "ci"], source, env)
    _run(["npm", "run", "build"], source / "packages" / "jaeger-ui", env)
    return source / "packages" / "jaeger-ui" / "build"


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))


def pack(built: Path, license_file: Path, target: Path) -> str:
    """Write ``built``'s files and the license to ``target`` (xz, reproducible); returns the archive's SHA-256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, "LICENSE", license_file.read_bytes())
        for path in sorted(p for p in built.rglob("*") if p.is_file()):
            _add(archive, path.relative_to(built).as_posix(), path.read_bytes())
    data = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    binaries.jaeger_ui_digest_file(target).write_text(f"{digest}  {target.name}\n")
    return digest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build jaeger-ui at the pinned tag and write the archive and its SHA-256."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--repository", default=UI_REPOSITORY, help=f"where to clone from (default {UI_REPOSITORY})")
    args = parser.parse_args(argv)
    try:
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
        clone = ["git", "clone", "--quiet", "--depth", "1", "--branch", binaries.JAEGER_UI_TAG]
        _run([*clone, args.repository, str(BUILD_DIR)], BUILD_DIR.parent)
        digest = pack(build(BUILD_DIR), BUILD_DIR / "LICENSE", binaries.JAEGER_UI_ARCHIVE)
    except (OSError, RuntimeError) as exc:
        print(f"build_jaeger_ui: {exc}", file=sys.stderr)
        return 1
    size = binaries.JAEGER_UI_ARCHIVE.stat().st_size
    print(f"{binaries.JAEGER_UI_ARCHIVE} ({size / 1e6:.2f} MB, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
