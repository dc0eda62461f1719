"""The collector, Jaeger and compose files: valid for the real binaries, and consistent with each other.

The tests marked ``integration`` run the real ``validate`` commands; the others
only read the files (pyyaml) and run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.processes import CONFIG_DIR, REPO, Binaries, load_build_script

BUILD = load_build_script()
COLLECTOR_CONFIGS = ["otel-collector.yaml", "loadbalancer.yaml"]
KINDS = ("receivers", "processors", "exporters", "extensions")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_every_config_file_is_covered() -> None:
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == sorted([*COLLECTOR_CONFIGS, "jaeger.yaml"])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("binary", "name"), [*(("collector", name) for name in COLLECTOR_CONFIGS), ("jaeger", "jaeger.yaml")]
)
def test_config_validates(binaries: Binaries, binary: str, name: str) -> None:
    result = subprocess.run(
        [str(getattr(binaries, binary)), "validate", "--config", str(CONFIG_DIR / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_binaries_are_the_pinned_releases(binaries: Binaries) -> None:
    collector = subprocess.run([str(binaries.collector), "--version"], capture_output=True, text=True, check=True)
    assert collector.stdout.strip() == f"otelcol-dspy version {BUILD.COLLECTOR_VERSION}"
    version = subprocess.run([str(binaries.jaeger), "version"], capture_output=True, text=True, check=True)
    assert json.loads(version.stdout.strip().splitlines()[-1])["gitVersion"] == BUILD.JAEGER_V2_VERSION
    # The stamp is ours: check that the module really is v1.76.0 and that Jaeger released it as 2.13.0.
    go_info = subprocess.run(["go", "version", "-m", str(binaries.jaeger)], capture_output=True, text=True, check=True)
    assert re.search(rf"\bmod\s+github.com/jaegertracing/jaeger\s+{BUILD.JAEGER_MODULE_VERSION}\s", go_info.stdout)
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    changelog = Path(modcache) / f"github.com/jaegertracing/jaeger@{BUILD.JAEGER_MODULE_VERSION}" / "CHANGELOG.md"
    assert f"{BUILD.JAEGER_MODULE_VERSION} / {BUILD.JAEGER_V2_VERSION} (" in changelog.read_text()


def test_compose_pins_the_tested_releases() -> None:
    services = _yaml(REPO / "docker-compose.yml")["services"]
    assert services["otel-collector"]["image"] == f"otel/opentelemetry-collector-contrib:{BUILD.COLLECTOR_VERSION}"
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:{BUILD.JAEGER_V2_VERSION.lstrip('v')}"
    for name, config in (("otel-collector", "otel-collector.yaml"), ("jaeger", "jaeger.yaml")):
        service = services[name]
        assert "./collector-config:/etc/dspy-otel:ro" in service["volumes"]
        assert service["command"] == [f"--config=/etc/dspy-otel/{config}"]
        assert service["restart"] == "unless-stopped"
    ports = {p.split(":")[0] for s in services.values() for p in s["ports"]}
    assert {"4317", "4318", "13133", "16686"} <= ports
    assert services["otel-collector"]["depends_on"]["jaeger"]["condition"] == "service_healthy"


def test_manifest_pins_one_collector_release() -> None:
    manifest = _yaml(BUILD.MANIFEST)
    components = {entry["gomod"].split()[1] for kind in KINDS for entry in manifest.get(kind, [])}
    assert components == {f"v{BUILD.COLLECTOR_VERSION}"}
    stable = {entry["gomod"].split()[1] for entry in manifest["providers"]}
    assert stable == {"v1.67.0"}  # the stable-module tag of the same collector release


@pytest.mark.integration
def test_manifest_holds_exactly_the_components_the_configs_use(binaries: Binaries) -> None:
    listing = subprocess.run([str(binaries.collector), "components"], capture_output=True, text=True, check=True)
    module_of = {
        (section, entry["name"]): entry["module"].split()[0]
        for section, entries in yaml.safe_load(listing.stdout).items()
        if section in KINDS
        for entry in entries or []
    }
    used = set()
    for name in COLLECTOR_CONFIGS:
        config = _yaml(CONFIG_DIR / name)
        used |= {module_of[section, key.split("/")[0]] for section in KINDS for key in config.get(section, {})}
    manifest = _yaml(BUILD.MANIFEST)
    assert used == {entry["gomod"].split()[0] for kind in KINDS for entry in manifest.get(kind, [])}


def test_collector_configs_use_debug_and_avoid_trace_flags() -> None:
    for name in COLLECTOR_CONFIGS:
        text = (CONFIG_DIR / name).read_text()
        assert "logging" not in _yaml(CONFIG_DIR / name).get("exporters", {})
        assert "trace_flags" not in text
    single = _yaml(CONFIG_DIR / "otel-collector.yaml")
    assert single["service"]["pipelines"]["traces"]["processors"][0] == "memory_limiter"
    assert {p["type"] for p in single["processors"]["tail_sampling"]["policies"]} == {
        "status_code",
        "latency",
        "probabilistic",
    }
    balancer = _yaml(CONFIG_DIR / "loadbalancer.yaml")["exporters"]["load_balancing"]
    assert balancer["routing_key"] == "traceID"
    assert "static" in balancer["resolver"]


@pytest.mark.integration
def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        message = "docker-compose is not installed (apt-get install docker-compose)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [compose, "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
