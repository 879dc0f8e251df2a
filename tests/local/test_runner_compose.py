"""`platform compose`: the committed compose.yaml, compose/ and .env.example are in sync with the spec
and accepted by docker-compose 1.29 (`config`) and the compose-spec JSON schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.render.compose import (
    env_variables,
    generated_files,
    render_compose,
    render_compose_yaml,
    render_env_example,
)
from infra.spec import REPO_ROOT, load_spec

SPEC = load_spec("dev")


def test_committed_compose_files_are_in_sync() -> None:
    assert (REPO_ROOT / "compose.yaml").read_text() == render_compose_yaml(SPEC), (
        "run: platform compose -o compose.yaml"
    )
    assert (REPO_ROOT / ".env.example").read_text() == render_env_example(SPEC)
    for rel, text in generated_files(SPEC).items():
        assert (REPO_ROOT / rel).read_text() == text, rel


def test_docker_compose_accepts_it(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(REPO_ROOT / "compose.yaml"), "--env-file", str(REPO_ROOT / ".env.example"),
         "config"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert "${" not in result.stdout  # every variable is defined by .env.example
    assert resolved["services"]["marketplace-svc"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_spec_schema_accepts_it() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema", "vendor.compose-spec",
         str(REPO_ROOT / "compose.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_is_built_from_its_dockerfile_and_waits_for_healthy_backends() -> None:
    doc = render_compose(SPEC)
    for svc in SPEC.services:
        entry = doc["services"][svc.name]
        assert entry["build"] == {"context": ".", "dockerfile": f"services/{svc.name}/Dockerfile"}
        assert (REPO_ROOT / entry["build"]["dockerfile"]).exists()
        assert "--reload" in entry["command"]
        assert entry["healthcheck"]["test"][0] == "CMD"
        assert doc["services"]["gateway"]["depends_on"][svc.name] == {"condition": "service_healthy"}
    for name in ("postgres", "redis", "rabbitmq", "gateway", "prometheus"):
        assert "healthcheck" in doc["services"][name]


def test_no_secret_is_rendered_only_variables() -> None:
    text = render_compose_yaml(SPEC)
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    assert used == set(env_variables(SPEC))
    assert all(value.startswith("change-me-") for value in re.findall(r"=(.*)", render_env_example(SPEC)))
