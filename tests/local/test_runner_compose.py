"""`platform compose`: the committed compose.yaml, compose/ and .env.example are in sync with the spec
and accepted by docker-compose 1.29 (`config`) and the compose-spec JSON schema."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import httpx
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


async def test_rabbitmq_init_gives_each_service_its_own_least_privilege_user(
    rabbitmq_server: Any, tmp_path: Path
) -> None:
    """The generated init script, run against a real broker's management API, as compose runs it."""
    files = generated_files(SPEC)
    for rel in ("compose/rabbitmq-init.py", "compose/rabbitmq-topology.json"):
        (tmp_path / Path(rel).name).write_text(files[rel])
    info = rabbitmq_server.info
    names = [name for name in env_variables(SPEC) if name.endswith("_RABBITMQ_PASSWORD")]
    passwords = {name: secrets.token_urlsafe(16) for name in names}
    env = {
        **os.environ,
        **passwords,
        "RABBITMQ_API": info.management_url,
        "RABBITMQ_ADMIN_USER": rabbitmq_server.user,
        "RABBITMQ_ADMIN_PASSWORD": rabbitmq_server.password,
    }
    init = [sys.executable, str(tmp_path / "rabbitmq-init.py"), str(tmp_path / "rabbitmq-topology.json")]
    proc = await asyncio.create_subprocess_exec(*init, env=env, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    users = [s.name for s in SPEC.services if s.manifest.needs.rabbitmq]
    try:
        url = rabbitmq_server.url("market", "marketplace-svc", passwords["MARKETPLACE_SVC_RABBITMQ_PASSWORD"])
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            events = await channel.get_exchange("events", ensure=False)
            await events.publish(aio_pika.Message(b"{}"), routing_key="listing.created")  # its own event
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await events.publish(aio_pika.Message(b"{}"), routing_key="payment.succeeded")
        with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(rabbitmq_server.url("market", "marketplace-svc", "not-the-password"))
        assert "password" not in files["compose/rabbitmq-topology.json"].replace("password_env", "")
    finally:
        async with httpx.AsyncClient(auth=(rabbitmq_server.user, rabbitmq_server.password)) as api:
            for user in users:
                await api.delete(f"{info.management_url}/api/users/{user}")
            await api.delete(f"{info.management_url}/api/vhosts/market")
