"""After a clean upgrade the service's own tests pass against real servers and `platform check` passes.

One git repository (a copy with code, so the Pulumi program sees it): orders-svc generated, then a
user change (a column + its own Alembic revision 0002) and a template change (an index on ``name`` in
the model + a new template revision 0002, a Dockerfile label) - the upgrade must chain the template's
revision after the user's and leave a service whose migrations match its models on real PostgreSQL.
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
from infra.scaffold.sandbox import copy_checkout
from infra.spec import REPO_ROOT, available_stacks

BIN = Path(sys.executable).parent
NAME = "orders-svc"
SVC = f"services/{NAME}"
TEMPLATE = "service_templates/fastapi/template"
MODELS_T = f"{TEMPLATE}/{{{{ package }}}}/{{% if postgres %}}models.py{{% endif %}}.jinja"
VERSIONS_T = f"{TEMPLATE}/{{% if postgres %}}migrations{{% endif %}}/versions"
REVISION = '''"""{title}

Revision ID: {rev}
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision: str = "{rev}"
down_revision: str | None = "0001"


def upgrade() -> None:
    {up}


def downgrade() -> None:
    {down}
'''


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=root, capture_output=True, check=True)


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("upgrade-e2e") / "repo", with_code=True)
    git(root, "init", "-q", ".")
    commit(root, "platform")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        args = ["new-service", NAME, "--redis", "--publishes", "order.created", "--no-input"]
        assert main([*args, "--no-install"]) == 0
        commit(root, "new-service")
        # The user: a notes column and its own revision 0002.
        models = root / SVC / "orders_svc/models.py"
        edit(models, "String, Uuid, func", "String, Text, Uuid, func")
        edit(
            models,
            "onupdate=func.now()\n    )\n",
            "onupdate=func.now()\n    )\n"
            "    notes: Mapped[str | None] = mapped_column(Text, nullable=True)\n",
        )
        (root / SVC / "migrations/versions/0002_notes.py").write_text(
            REVISION.format(
                title="Notes on items.",
                rev="0002",
                up='op.add_column("items", sa.Column("notes", sa.Text(), nullable=True))',
                down='op.drop_column("items", "notes")',
            )
        )
        commit(root, "user: notes")
        # The template: an index on name (model + a new revision), a label in the Dockerfile.
        edit(root / MODELS_T, "mapped_column(String(200))", "mapped_column(String(200), index=True)")
        (root / VERSIONS_T / "0002_name_index.py.jinja").write_text(
            REVISION.format(
                title="Index {{ resource }}.name.",
                rev="0002",
                up='op.create_index(op.f("ix_{{ resource }}_name"), "{{ resource }}", ["name"])',
                down='op.drop_index(op.f("ix_{{ resource }}_name"), table_name="{{ resource }}")',
            )
        )
        with (root / TEMPLATE / "Dockerfile.jinja").open("a") as f:
            f.write("LABEL org.opencontainers.image.title={{ name }}\n")
        commit(root, "template: index on name")
        assert main(["upgrade-service", NAME, "--no-install"]) == 0
    finally:
        os.chdir(cwd)
    return root


def test_upgrade_merged_both_sides(repo: Path) -> None:
    models = (repo / SVC / "orders_svc/models.py").read_text()
    assert "mapped_column(String(200), index=True)" in models
    assert "notes: Mapped[str | None]" in models
    revisions = sorted(p.name for p in (repo / SVC / "migrations/versions").glob("*.py"))
    template_rev = [r for r in revisions if r not in ("0001_initial.py", "0002_notes.py")]
    assert len(revisions) == 3
    assert re.fullmatch(r"0002_[0-9a-f]{8}_name_index\.py", template_rev[0])


def test_upgraded_service_tests_pass_against_real_servers(repo: Path) -> None:
    service = repo / SVC
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
            *("-p", "infra.local.pytest_plugin", "-p", "no:cacheprovider", "-q", str(service / "tests")),
        ],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(service)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.search(r"^\d+ passed in", summary), summary  # migrations match the models, round trip


def test_platform_check_passes_on_every_stack_after_the_upgrade(repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(repo)}
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
        assert json.loads(out)["ok"]
