"""Generated services work: their own tests pass against real servers, ruff, hadolint, `platform check`.

One copy of the repo (code included, so the Pulumi program sees the copy) holds the answer matrix:
no backing services; PostgreSQL only; PostgreSQL + Redis + RabbitMQ publishing and consuming; Redis +
direct publishing without a database (a package name sorting after ``servicekit``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from infra.render.nginx import CLUSTER_PROXIES
from infra.scaffold.plan import template_version
from infra.scaffold.sandbox import copy_checkout
from infra.spec import REPO_ROOT, available_stacks, load_manifest

BIN = Path(sys.executable).parent
MATRIX = {
    "plain-svc": ["--no-postgres"],
    "pg-svc": ["--postgres", "--resource", "orders"],
    "full-svc": [
        "--postgres",
        "--redis",
        "--redis-db",
        "5",
        "--publishes",
        "shipment.created,shipment.delivered",
        "--consumes",
        "listing.created,payment.succeeded",
        "--resource",
        "shipments",
    ],
    "zeta-cache-svc": ["--no-postgres", "--redis", "--publishes", "zeta.pinged", "--resource", "pings"],
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("matrix") / "repo", with_code=True)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        for name, flags in MATRIX.items():
            assert main(["new-service", name, *flags, "--no-input"]) == 0
    finally:
        os.chdir(cwd)
    return root


def _dirs(repo: Path) -> list[str]:
    return [str(repo / "services" / name) for name in MATRIX]


def test_generated_manifests_validate_and_record_the_template(repo: Path) -> None:
    for name in MATRIX:
        manifest = load_manifest(repo / "services" / name / "service.yaml")
        assert manifest.template.name == "fastapi"
        assert manifest.template.version == "unknown"  # the copy is not a git checkout
    full = load_manifest(repo / "services" / "full-svc" / "service.yaml").needs
    assert full.postgres is not None
    assert full.redis is not None
    assert full.redis.db == 5
    assert full.rabbitmq is not None
    assert full.rabbitmq.consumes == ["listing.created", "payment.succeeded"]


def test_template_version_is_the_templates_last_commit() -> None:
    out = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "service_templates/fastapi"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", out)
    assert template_version(REPO_ROOT, "fastapi") == out


def test_generated_code_is_ruff_clean(repo: Path) -> None:
    """With the repo's config, run from the repo root (so `infra` is first-party, as for real services)."""
    config = str(REPO_ROOT / "pyproject.toml")
    check = subprocess.run(
        [str(BIN / "ruff"), "check", "--config", config, *_dirs(repo)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "--config", config, *_dirs(repo)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout


def test_every_dockerfile_trusts_forwarded_for_only_from_the_cluster_ranges(repo: Path) -> None:
    """Committed and generated images alike: never ``*`` (a client could pick its own address)."""
    expected = ",".join(CLUSTER_PROXIES)
    dockerfiles = sorted((repo / "services").glob("*/Dockerfile"))
    assert len(dockerfiles) == len(list(REPO_ROOT.glob("services/*/Dockerfile"))) + len(MATRIX)
    for dockerfile in dockerfiles:
        values = re.findall(r'FORWARDED_ALLOW_IPS="([^"]*)"', dockerfile.read_text())
        assert values == [expected], dockerfile


def test_dockerfiles_pass_hadolint(repo: Path) -> None:
    for name in MATRIX:
        lint = subprocess.run(
            [str(BIN / "hadolint"), str(repo / "services" / name / "Dockerfile")],
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, lint.stdout


def test_generated_tests_pass_against_real_servers(repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(_dirs(repo))}
    tests = [f"{d}/tests" for d in _dirs(repo)]
    run = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "pytest",
                "-c",
                str(REPO_ROOT / "pyproject.toml"),
                "--rootdir",
                str(repo),
            ),
            *("-p", "infra.local.pytest_plugin", "-p", "no:cacheprovider", "-q", *tests),
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.search(r"^\d+ passed in", summary), summary  # no failures, errors or skips
    assert int(summary.split()[0]) >= 40


def test_platform_check_passes_for_every_stack(repo: Path) -> None:
    """`platform check --skip-checkov` (checkov takes minutes a stack; schema and integrity run)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}  # the copy's infra: REPO_ROOT is the copy
    procs = {
        stack: subprocess.Popen(
            [str(BIN / "platform"), "check", "--stack", stack, "--skip-checkov", "--json"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stack in available_stacks(repo)
    }
    for stack, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{stack}:\n{out[-3000:]}\n{err[-3000:]}"
        report = json.loads(out)
        assert report["ok"], report
        assert report["sections"]["schema"]["ran"], report
    rendered = subprocess.run(
        [str(BIN / "platform"), "render", "--stack", "dev"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    for name in MATRIX:  # the checked manifests include the new services
        assert re.search(rf"kind: Deployment\n(.*\n)*?  name: {name}\n", rendered.stdout), name
