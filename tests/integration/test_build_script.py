"""scripts/build_otel_binaries.py without building: the cache, the UI archive, the missing-Go error, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.processes import load_build_script

BUILD = load_build_script()


def _cached(root: Path) -> tuple[Path, Path]:
    paths = BUILD.collector_path(root), BUILD.jaeger_path(root)
    for path in paths:
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
    return paths


def test_cached_binaries_are_not_rebuilt(tmp_path: Path) -> None:
    collector, jaeger = _cached(tmp_path)
    lines: list[str] = []
    built = BUILD.build_all(go=str(tmp_path / "no-go-here"), root=tmp_path, log=lines.append)  # go never runs
    assert (built.collector, built.jaeger, built.jaeger_ui) == (collector, jaeger, BUILD.jaeger_ui_path(tmp_path))
    assert sorted(line.split(":")[0] for line in lines) == ["collector", "jaeger", "jaeger UI"]


def test_cache_folders_name_version_and_inputs(tmp_path: Path) -> None:
    assert BUILD.collector_path(tmp_path).parent.name.startswith(f"otelcol-{BUILD.COLLECTOR_VERSION}-")
    assert BUILD.jaeger_path(tmp_path).parent.name.startswith(f"jaeger-{BUILD.JAEGER_MODULE_VERSION}-")
    assert not BUILD.collector_path(tmp_path).is_relative_to(BUILD.REPO)


def test_cache_root_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DSPY_OTEL_BIN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert BUILD.cache_root() == tmp_path / "dspy-otel" / "bin"
    monkeypatch.setenv("DSPY_OTEL_BIN_CACHE", str(tmp_path / "elsewhere"))
    assert BUILD.cache_root() == tmp_path / "elsewhere"


def test_missing_go_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(FileNotFoundError, match="Go toolchain"):
        BUILD.build_all()
    assert BUILD.main([]) == 1
    assert "`go`) is not on PATH" in capsys.readouterr().err


def test_main_prints_the_paths_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collector, jaeger = _cached(tmp_path)
    monkeypatch.setenv("DSPY_OTEL_BIN_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # a `go` must exist on PATH, though it is not run
    (tmp_path / "go").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "go").chmod(0o755)
    assert BUILD.main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "collector": str(collector),
        "jaeger": str(jaeger),
        "jaeger_ui": str(BUILD.jaeger_ui_path(tmp_path)),
    }


def test_the_ui_archive_unpacks_once_into_the_cache_with_its_license(tmp_path: Path) -> None:
    ui = BUILD.unpack_jaeger_ui(tmp_path)
    assert ui == BUILD.jaeger_ui_path(tmp_path)
    assert ui.name.startswith(f"jaeger-ui-{BUILD.JAEGER_UI_TAG}-")
    assert "JAEGER_VERSION = DEFAULT_VERSION;" in (ui / "index.html").read_text()  # what Jaeger fills in
    assert "Apache License" in (ui / "LICENSE").read_text()
    assert [p.name for p in tmp_path.iterdir()] == [ui.name]  # no staging folder left
    (ui / "index.html").write_text("kept")
    assert BUILD.unpack_jaeger_ui(tmp_path) == ui
    assert (ui / "index.html").read_text() == "kept"


def test_a_damaged_ui_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = tmp_path / BUILD.JAEGER_UI_ARCHIVE.name
    damaged.write_bytes(BUILD.JAEGER_UI_ARCHIVE.read_bytes()[:-1])
    BUILD.jaeger_ui_digest_file(damaged).write_text(BUILD.jaeger_ui_digest_file(BUILD.JAEGER_UI_ARCHIVE).read_text())
    monkeypatch.setattr(BUILD, "JAEGER_UI_ARCHIVE", damaged)
    with pytest.raises(RuntimeError, match="does not match"):
        BUILD.unpack_jaeger_ui(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
