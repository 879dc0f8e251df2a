"""Day-2 scenarios: each change is applied to a git copy of the repository and planned against its
committed base (`platform diff`'s own code: both trees rendered, each with its own code), and the plan
the engine would run is asserted - what is created, updated, replaced or deleted, what rolls and why."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.diff import diff_stack, format_markdown
from infra.lifecycle.plan import Plan
from infra.spec import load_spec
from tests.infra.deploy.repo import copy_repo, git

PLATFORM = str(Path(sys.executable).parent / "platform")
_SPEC = load_spec("dev")
SERVICES = tuple(s.name for s in _SPEC.services)
#: Services with a database (each has a <svc>-migrate Job) and with RabbitMQ.
DB_SERVICES = tuple(s.name for s in _SPEC.services if s.manifest.needs.postgres)
RABBIT_SERVICES = tuple(s.name for s in _SPEC.services if s.manifest.needs.rabbitmq)


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("day2") / "repo")


@pytest.fixture
def repo(base_repo: Path) -> Iterator[Path]:
    """The base copy, reset to its commit after each scenario."""
    yield base_repo
    git(base_repo, "reset", "-q", "--hard")
    git(base_repo, "clean", "-qfdx")


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args], cwd=root, capture_output=True, text=True, timeout=180, check=False
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def steps(p: Plan) -> dict[str, str]:
    """ref -> operation (``replace (delete first)`` etc.), kubernetes objects and other resources."""
    return {s.ref: s.operation for s in p.steps}


def rolling(p: Plan) -> dict[str, list[str]]:
    return {s.ref: s.rolls for s in p.steps if s.rolls}


def image(svc: str) -> str:
    return f"docker:index/image:Image::{svc}-image"


def test_add_a_service_with_postgres_redis_and_rabbitmq(repo: Path) -> None:
    proc = run(
        repo,
        "new-service",
        "orders-svc",
        "--route", "/api/orders",
        "--postgres", "--redis", "--publishes", "order.placed", "--consumes", "listing.created",
        "--no-input",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    p = diff_stack("dev", repo, "HEAD")
    ops = steps(p)
    for ref in (
        "Deployment/orders-svc",
        "Service/orders-svc",
        "ConfigMap/orders-svc-config",
        "Job/orders-svc-migrate",
        "Secret/orders-svc-db",
        "Secret/orders-svc-redis",
        "Secret/orders-svc-rabbitmq",
        "NetworkPolicy/orders-svc-allow-ingress",
        image("orders-svc"),
    ):
        assert ops[ref] == "create", ref
    # The data stores learn the new user: their boot-time files change and they restart with them.
    assert ops["Secret/redis-acl"] == ops["Secret/rabbitmq-definitions"] == "update"
    assert rolling(p)["StatefulSet/redis"] == ["Secret redis-acl changed"]
    assert rolling(p)["StatefulSet/rabbitmq"] == ["Secret rabbitmq-definitions changed"]
    # The bootstrap Job's template lists the new database: replaced, it runs again.
    assert ops["Job/postgres-bootstrap"] == "replace (delete first)"
    # The gateway routes to it and waits for its Service (nginx resolves upstreams at start).
    assert rolling(p)["Deployment/gateway"] == ["ConfigMap gateway-config changed"]
    assert not [
        r for r, op in ops.items() if op == "delete" or (op.startswith("replace") and "Job/" not in r)
    ]
    assert {
        r for r, rolls in rolling(p).items() if r.startswith("Deployment/") and r.endswith("-svc")
    } == set()
    assert p.hazards == []


def test_remove_a_service(repo: Path) -> None:
    proc = run(repo, "services", "remove", "chat-svc", "--delete")
    assert proc.returncode == 2  # the web app's client still covers it
    assert "frontend/service.yaml: apis: no service called 'chat-svc'" in proc.stderr
    web = repo / "frontend" / "service.yaml"
    web.write_text(web.read_text().replace("chat-svc, ", ""))  # the app stops calling it first
    proc = run(repo, "services", "remove", "chat-svc", "--delete")
    assert proc.returncode == 0, proc.stderr
    p = diff_stack("dev", repo, "HEAD")
    ops = steps(p)
    for ref in (
        "Deployment/chat-svc",
        "Service/chat-svc",
        "Job/chat-svc-migrate",
        "Secret/chat-svc-db",
    ):
        assert ops[ref] == "delete", ref
    assert ops[image("chat-svc")] == "delete"
    assert rolling(p)["Deployment/gateway"] == ["ConfigMap gateway-config changed"]
    assert rolling(p)["StatefulSet/redis"] == ["Secret redis-acl changed"]
    assert ops["Job/postgres-bootstrap"] == "replace (delete first)"
    assert not [
        r for r in ops if r.startswith("Deployment/") and r != "Deployment/chat-svc" and r not in rolling(p)
    ]
    assert p.hazards == []


def test_change_cors_origins(repo: Path) -> None:
    edit(
        repo / "stacks" / "Pulumi.dev.yaml",
        "corsOrigins: [https://dev.market.example.com, http://localhost:3000]",
        "corsOrigins: [https://dev.market.example.com]",
    )
    p = diff_stack("dev", repo, "HEAD")
    ops = steps(p)
    assert rolling(p)["Deployment/gateway"] == ["ConfigMap gateway-config changed"]
    for svc in SERVICES:  # CORS_ORIGINS is part of every service's environment contract
        assert ops[f"ConfigMap/{svc}-config"] == "update"
        assert rolling(p)[f"Deployment/{svc}"] == [f"ConfigMap {svc}-config changed"]
    assert not [r for r, op in ops.items() if op in ("create", "delete")]
    assert not [r for r, op in ops.items() if op.startswith("replace") and not r.startswith("Job/")]
    assert p.hazards == []


def test_a_docs_only_change_changes_nothing(repo: Path) -> None:
    (repo / "docs" / "deploy.md").write_text("# rewritten\n")
    (repo / "README.md").write_text("# rewritten\n")
    p = diff_stack("dev", repo, "HEAD")
    assert p.steps == []
    assert p.hazards == []
    assert "No changes to Kubernetes objects." in format_markdown(p)


def test_a_code_change_in_one_service_rebuilds_only_its_image(repo: Path) -> None:
    main = repo / "services" / "chat-svc" / "chat_svc" / "main.py"
    main.write_text(main.read_text() + "\n# a code change\n")
    p = diff_stack("dev", repo, "HEAD")
    assert steps(p) == {
        image("chat-svc"): "update",
        "Job/chat-svc-migrate": "replace (delete first)",
        "Deployment/chat-svc": "update",
    }
    (reason,) = rolling(p)["Deployment/chat-svc"]
    assert reason.startswith("image of app: registry.dev.example.com/market/chat-svc:")
    assert p.hazards == []


def test_a_servicekit_change_rebuilds_every_image(repo: Path) -> None:
    app = repo / "libs" / "servicekit" / "servicekit" / "app.py"
    app.write_text(app.read_text() + "\n# a servicekit change\n")
    p = diff_stack("dev", repo, "HEAD")
    expected = {image(svc): "update" for svc in SERVICES}
    expected |= {f"Job/{svc}-migrate": "replace (delete first)" for svc in DB_SERVICES}
    expected |= {f"Deployment/{svc}": "update" for svc in SERVICES}
    assert steps(p) == expected
    assert all(rolling(p)[f"Deployment/{svc}"][0].startswith("image of app: ") for svc in SERVICES)


def test_rotate_one_password(repo: Path) -> None:
    edit(
        repo / "stacks" / "Pulumi.dev.yaml",
        "  platform:services:\n",
        "  platform:rotation:\n    postgres/marketplace-svc: 1\n  platform:services:\n",
    )
    p = diff_stack("dev", repo, "HEAD")
    assert steps(p) == {
        "random:index/randomPassword:RandomPassword::postgres-marketplace-svc-password": "replace",
        "Secret/marketplace-svc-db": "update",
        "Job/postgres-bootstrap": "replace (delete first)",  # ALTER ROLE with the new password
        "Job/marketplace-svc-migrate": "replace (delete first)",
        "Deployment/marketplace-svc": "update",
    }
    secret = next(s for s in p.steps if s.ref == "Secret/marketplace-svc-db")
    assert "stringData (content digest)" in [c.text for c in secret.changes]
    assert rolling(p) == {"Deployment/marketplace-svc": ["Secret marketplace-svc-db changed"]}
    assert p.hazards == []


def test_change_replicas(repo: Path) -> None:
    edit(repo / "stacks" / "Pulumi.dev.yaml", "auth-svc: {replicas: 1}", "auth-svc: {replicas: 2}")
    p = diff_stack("dev", repo, "HEAD")
    assert steps(p) == {"Deployment/auth-svc": "update"}
    assert rolling(p) == {}  # scaling starts pods, it restarts none
    assert [c.text for c in p.steps[0].changes] == ["spec.replicas"]


def test_change_retry_delays(repo: Path) -> None:
    edit(
        repo / "stacks" / "Pulumi.dev.yaml",
        "retryDelaysMs: [1000, 5000, 30000]",
        "retryDelaysMs: [2000, 10000]",
    )
    p = diff_stack("dev", repo, "HEAD")
    ops = steps(p)
    assert ops["Secret/rabbitmq-definitions"] == "update"
    assert rolling(p)["StatefulSet/rabbitmq"] == ["Secret rabbitmq-definitions changed"]
    for svc in RABBIT_SERVICES:  # RABBITMQ_RETRY_DELAYS_MS: their consumers retry on the new delays
        assert rolling(p)[f"Deployment/{svc}"] == [f"ConfigMap {svc}-config changed"]
    assert p.hazards == []


def test_change_a_storage_size_is_refused(repo: Path) -> None:
    edit(
        repo / "stacks" / "Pulumi.dev.yaml",
        "    storage: 1Gi\n    retryDelaysMs",
        "    storage: 5Gi\n    retryDelaysMs",
    )
    p = diff_stack("dev", repo, "HEAD")
    # The broker's free-disk alarm is sized from its volume (a tenth), so its config follows the size.
    assert steps(p) == {
        "StatefulSet/rabbitmq": "replace (delete first)",
        "ConfigMap/rabbitmq-config": "update",
    }
    assert [h.kind for h in p.hazards] == ["data-store-replaced", "volume-claim-change"]
    markdown = format_markdown(p)
    assert markdown.index("⚠️ Hazards") < markdown.index("| Operation |")
    proc = run(repo, "check", "--stack", "dev", "--skip-checkov", "--base", "HEAD")
    assert proc.returncode == 1
    assert "[LC-STORE]" in proc.stdout
    assert "StatefulSet/rabbitmq spec.volumeClaimTemplates[0].spec.resources.requests.storage" in proc.stdout
    assert "docs/runbooks.md#growing-a-data-stores-volume" in proc.stdout
