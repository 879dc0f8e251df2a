"""`platform upgrade-service` on a temporary git repository: user edits x template changes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.main import main
from infra.scaffold.apply import PAUSE_ENV
from infra.scaffold.provenance import ANSWERS_FILE
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.spec import REPO_ROOT, available_stacks, load_spec

NAME = "orders-svc"
TEMPLATE = "service_templates/fastapi/template"
MAIN_T = f"{TEMPLATE}/{{{{ package }}}}/main.py.jinja"
SVC = f"services/{NAME}"
MAIN = f"{SVC}/orders_svc/main.py"
PLATFORM = Path(sys.executable).with_name("platform")


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with the platform's manifests, stacks and templates, and orders-svc generated."""
    root = copy_checkout(REPO_ROOT, tmp_path_factory.mktemp("origin") / "repo")
    git(root, "init", "-q", ".")
    commit(root, "platform")
    proc = subprocess.run(
        [str(PLATFORM), "new-service", NAME, "--no-input"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    commit(root, "new-service orders-svc")
    return root


@pytest.fixture
def repo(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(origin, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


def upgrade(*args: str) -> int:
    return main(["upgrade-service", NAME, *args])


def test_new_service_records_template_commit_and_every_answer(repo: Path) -> None:
    data = yaml.safe_load((repo / SVC / ANSWERS_FILE).read_text())
    assert data["template"] == "fastapi"
    assert data["commit"] == git(repo, "log", "-1", "--format=%H", "--", "service_templates/fastapi").strip()
    assert data["answers"] == {
        "name": NAME,
        "description": f"{NAME} service",
        "route": "/api/orders",
        "resource": "items",
        "port": 8000,
        "postgres": True,
        "database": "orders",
        "redis": False,
        "publishes": [],
        "consumes": [],
    }


def test_same_line_changed_on_both_sides_gets_inline_markers_and_exit_1(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    edit(repo, MAIN, 'title="orders-svc",', 'title="Orders",')
    commit(repo, "user: title")
    assert upgrade() == 1
    captured = capsys.readouterr()
    text = (repo / MAIN).read_text()
    assert f'<<<<<<< {MAIN} (yours)\n        title="Orders",\n=======\n' in text
    assert f'        title="orders-svc API",\n>>>>>>> {MAIN} (template new)\n' in text
    assert f"conflict  {MAIN}" in captured.out
    assert f"error: conflicts remain in 1 file(s): {MAIN}\nhint: " in captured.err
    # Re-running before resolving still fails; after resolving and committing it is clean.
    assert upgrade() == 1
    capsys.readouterr()
    (repo / MAIN).write_text(text.split("<<<<<<<")[0] + '        title="Orders API",\n    )\n')
    commit(repo, "resolved")
    assert upgrade() == 0
    assert "up to date" in capsys.readouterr().out


def test_different_lines_merge_cleanly(repo: Path) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    edit(repo, MAIN, '"""Build the app;', '"""Build the orders app;')
    commit(repo, "user: docstring")
    assert upgrade() == 0
    text = (repo / MAIN).read_text()
    assert 'title="orders-svc API"' in text
    assert '"""Build the orders app;' in text
    assert "<<<<<<<" not in text


def test_untouched_file_takes_the_template_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (repo / TEMPLATE / "Dockerfile.jinja").open("a") as f:
        f.write("LABEL org.opencontainers.image.title={{ name }}\n")
    commit(repo, "template: label")
    assert upgrade() == 0
    assert (
        (repo / SVC / "Dockerfile").read_text().endswith("LABEL org.opencontainers.image.title=orders-svc\n")
    )
    assert f"update    {SVC}/Dockerfile" in capsys.readouterr().out


def test_file_deleted_by_the_user_stays_deleted_and_is_reported(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (repo / TEMPLATE / "tests/test_main.py.jinja").open("a") as f:
        f.write("# template change\n")
    commit(repo, "template: test_main")
    (repo / SVC / "tests/test_main.py").unlink()
    commit(repo, "user: no test_main")
    assert upgrade() == 0
    assert not (repo / SVC / "tests/test_main.py").exists()
    assert f"keep      {SVC}/tests/test_main.py (deleted by you: stays deleted)" in capsys.readouterr().out


def test_file_deleted_by_the_template_is_deleted_when_untouched(repo: Path) -> None:
    git(repo, "rm", "-q", f"{TEMPLATE}/Dockerfile.dockerignore.jinja")
    commit(repo, "template: drop dockerignore")
    assert upgrade() == 0
    assert not (repo / SVC / "Dockerfile.dockerignore").exists()


def test_file_deleted_by_the_template_but_changed_by_the_user_is_kept(repo: Path) -> None:
    git(repo, "rm", "-q", f"{TEMPLATE}/Dockerfile.dockerignore.jinja")
    commit(repo, "template: drop dockerignore")
    with (repo / SVC / "Dockerfile.dockerignore").open("a") as f:
        f.write("secrets/\n")
    commit(repo, "user: ignore secrets")
    assert upgrade() == 0
    assert (repo / SVC / "Dockerfile.dockerignore").read_text().endswith("secrets/\n")


def test_file_added_by_the_template_is_created(repo: Path) -> None:
    (repo / TEMPLATE / "README.md.jinja").write_text("# {{ name }}\n\n{{ description }}\n")
    commit(repo, "template: readme")
    assert upgrade() == 0
    assert (repo / SVC / "README.md").read_text() == f"# {NAME}\n\n{NAME} service\n"


def test_changed_answer_rerenders_and_merges_the_manifest_key_by_key(repo: Path) -> None:
    manifest = repo / SVC / "service.yaml"
    text = manifest.read_text().replace("port: 8000\n", "# owned by team-orders\nport: 8000\n")
    manifest.write_text(text + "env: {ORDERS_PAGE_SIZE: '50'}\n")
    commit(repo, "user: manifest")
    assert upgrade("--answer", "redis=true") == 0
    text = manifest.read_text()
    data = yaml.safe_load(text)
    assert data["needs"]["redis"] == {"db": 0}
    assert data["env"] == {"ORDERS_PAGE_SIZE": "50"}
    assert "# owned by team-orders\nport: 8000\n" in text
    assert "item_cache_ttl_seconds" in (repo / SVC / "orders_svc/core/config.py").read_text()
    assert yaml.safe_load((repo / SVC / ANSWERS_FILE).read_text())["answers"]["redis"] is True
    for stack in available_stacks(repo):
        load_spec(stack, repo)


def test_new_template_migration_is_chained_after_the_services_own_head(repo: Path) -> None:
    versions = repo / SVC / "migrations/versions"
    (versions / "0002_orders_index.py").write_text(
        '"""Index on name.\n\nRevision ID: 0002\nRevises: 0001\n"""\n\n'
        'revision: str = "0002"\ndown_revision: str | None = "0001"\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    commit(repo, "user: own revision 0002")
    tversions = repo / TEMPLATE / "{% if postgres %}migrations{% endif %}/versions"
    (tversions / "0002_add_notes.py.jinja").write_text(
        '"""Add notes.\n\nRevision ID: 0002\nRevises: 0001\n"""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision: str = "0002"\ndown_revision: str | None = "0001"\n\n\n'
        'def upgrade() -> None:\n    op.add_column("{{ resource }}", sa.Column("notes", sa.Text()))\n\n\n'
        'def downgrade() -> None:\n    op.drop_column("{{ resource }}", "notes")\n'
    )
    initial = versions / "0001_initial.py"
    before = initial.read_bytes()
    with (tversions / "0001_initial.py.jinja").open("a") as f:
        f.write("# changed in the template after services ran it\n")
    commit(repo, "template: migration 0002")
    assert upgrade() == 0
    assert initial.read_bytes() == before  # an existing revision is never rewritten
    created = sorted(p.name for p in versions.glob("*.py"))
    assert len(created) == 3
    new = next(versions / n for n in created if "add_notes" in n)
    text = new.read_text()
    assert 'down_revision: str | None = "0002"' in text
    assert "Revises: 0002\n" in text

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(repo / SVC / "migrations/alembic.ini")))
    heads = script.get_heads()
    assert len(heads) == 1
    assert script.get_revision(heads[0]).down_revision == "0002"


def test_rerun_of_an_applied_upgrade_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    assert upgrade() == 0
    commit(repo, "upgraded")
    capsys.readouterr()
    before = tree_digest(repo)
    assert upgrade() == 0
    assert "orders-svc: up to date" in capsys.readouterr().out
    assert tree_digest(repo) == before
    assert git(repo, "status", "--porcelain") == ""


def test_dry_run_writes_nothing_and_json_lists_the_plan(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    before = tree_digest(repo)
    assert upgrade("--dry-run", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "dry-run"
    actions = {f["path"]: f["action"] for f in data["files"]}
    assert actions[MAIN] == "update"
    assert actions[f"{SVC}/service.yaml"] == "update"  # template.version moves
    assert tree_digest(repo) == before


def test_hand_written_service_is_refused_with_a_hint(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upgrade-service", "auth-svc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: services/auth-svc was written by hand (template version: initial)")
    assert "\nhint: " in err
    assert "Traceback" not in err


def test_uncommitted_change_to_a_touched_file_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    edit(repo, MAIN, '"""Build the app;', '"""Build the orders app;')
    before = tree_digest(repo)
    assert upgrade() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 file(s) the upgrade would change have uncommitted changes, e.g. ")
    assert "hint: commit or stash them" in err
    assert tree_digest(repo) == before


def test_bad_recorded_answer_fails_like_a_bad_flag(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, f"{SVC}/{ANSWERS_FILE}", "port: 8000", "port: eighty")
    commit(repo, "broken answers")
    assert upgrade() == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"error: {SVC}/{ANSWERS_FILE}: --port: 'eighty' is not a whole number"
    assert err.splitlines()[1].startswith("hint: ")
    assert len(err.splitlines()) == 2


def test_list_shows_revision_and_all_upgrades_generated_services_only(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    assert main(["services", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[NAME]["template_moved_on"] is True
    assert rows["auth-svc"]["template_revision"] == "initial"
    assert main(["upgrade-service", "--all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["service"] for s in data["services"]] == [NAME]
    assert main(["services", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(NAME))
    assert "moved on" not in line


@pytest.fixture(scope="module")
def changed(origin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """origin + a template change and a user edit (committed once, so every copy has the same shas)."""
    root = tmp_path_factory.mktemp("changed") / "repo"
    shutil.copytree(origin, root, symlinks=True)
    edit(root, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    (root / TEMPLATE / "README.md.jinja").write_text("# {{ name }}\n")
    commit(root, "template: title + readme")
    edit(root, MAIN, '"""Build the app;', '"""Build the orders app;')
    commit(root, "user: docstring")
    return root


def _platform(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLATFORM), *args], cwd=root, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _digest(root: Path) -> str:
    return tree_digest(root, exclude=("__pycache__", ".git"))


@pytest.fixture(scope="module")
def upgraded(changed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("upgraded") / "repo"
    shutil.copytree(changed, root, symlinks=True)
    assert _platform(root, "upgrade-service", NAME).returncode == 0
    return root


@pytest.mark.parametrize("step", ["rendered", "scratch", "staged", "renamed"])
def test_sigkill_at_each_step_leaves_the_old_or_the_upgraded_tree(
    changed: Path, upgraded: Path, tmp_path: Path, step: str
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(changed, root, symlinks=True)
    env = {**os.environ, PAUSE_ENV: step, "PLATFORM_SCAFFOLD_PAUSE_SECONDS": "30"}
    proc = subprocess.Popen(
        [str(PLATFORM), "upgrade-service", NAME],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == f"paused at {step}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    # Right after the kill the service folder is wholly old or wholly upgraded.
    folder = tree_digest(root / SVC)
    committed = step == "renamed"
    assert folder == tree_digest((upgraded if committed else changed) / SVC)

    listed = _platform(root, "services", "list")
    assert listed.returncode == 0, listed.stderr
    if step == "rendered":
        assert listed.stderr == ""
    else:
        outcome = "completed" if committed else "rolled back"
        assert f"recovered an interrupted `upgrade` of {NAME}: {outcome}" in listed.stderr
    assert _digest(root) == _digest(upgraded if committed else changed)


def test_stack_entries_follow_the_template_key_by_key_and_keep_comments(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template_yaml = "service_templates/fastapi/template.yaml"
    edit(
        repo,
        template_yaml,
        "prod: {replicas: 3, autoscale: {min: 3, max: 6}}",
        "prod: {replicas: 3, autoscale: {min: 3, max: 8}}",
    )
    edit(repo, template_yaml, "staging: {replicas: 2}", "staging: {replicas: 3}")
    commit(repo, "template: bigger defaults")
    prod, staging = repo / "stacks/Pulumi.prod.yaml", repo / "stacks/Pulumi.staging.yaml"
    edit(
        repo,
        "stacks/Pulumi.prod.yaml",
        f"    {NAME}: {{replicas: 3,",
        f"    # orders peak on Mondays\n    {NAME}: {{replicas: 4,",
    )
    edit(repo, "stacks/Pulumi.staging.yaml", f"    {NAME}: {{replicas: 2}}", f"    {NAME}: {{replicas: 1}}")
    commit(repo, "user: sizing")
    staging_before = staging.read_text()
    pods_before = yaml.safe_load(prod.read_text())["config"]["platform:quota"]["pods"]
    assert upgrade() == 0
    # autoscale max 6 -> 8: the rollout peak has two more pods, and the quota says so
    assert yaml.safe_load(prod.read_text())["config"]["platform:quota"]["pods"] == pods_before + 2
    assert (
        f"    # orders peak on Mondays\n    {NAME}: {{replicas: 4, autoscale: {{min: 3, max: 8}}}}\n"
        in prod.read_text()
    )
    assert staging.read_text() == staging_before  # both changed replicas: the user's value stays
    out = capsys.readouterr().out
    assert f"update    stacks/Pulumi.prod.yaml: platform:services.{NAME}" in out
    assert (
        f"keep      stacks/Pulumi.staging.yaml: platform:services.{NAME} (the template changed replicas"
        in out
    )
    for stack in available_stacks(repo):
        load_spec(stack, repo)


def test_to_a_revision_stops_there_and_a_later_run_takes_the_rest(repo: Path) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')
    commit(repo, "template: title")
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / TEMPLATE / "README.md.jinja").write_text("# {{ name }}\n")
    commit(repo, "template: readme")
    assert upgrade("--to", first[:10]) == 0
    assert 'title="orders-svc API"' in (repo / MAIN).read_text()
    assert not (repo / SVC / "README.md").exists()
    assert yaml.safe_load((repo / SVC / ANSWERS_FILE).read_text())["commit"] == first
    commit(repo, "upgraded to the first change")
    assert upgrade() == 0
    assert (repo / SVC / "README.md").is_file()


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["--answer", "colour=blue"], "error: template 'fastapi' has no question 'colour'"),
        (["--answer", "port=80"], "error: --port: 80 is below 1024"),
        (["--answer", "name=other-svc"], "error: --answer name=...: an upgrade cannot rename a service"),
        (["--to", "no-such-rev"], "error: --to 'no-such-rev': no such commit in this repository"),
    ],
)
def test_bad_flags_are_one_line_and_a_hint(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], first_line: str
) -> None:
    before = tree_digest(repo)
    assert upgrade(*args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == first_line
    assert lines[1].startswith("hint: ")
    assert len(lines) == 2
    assert tree_digest(repo) == before


def test_uncommitted_template_changes_are_merged_with_a_warning(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, MAIN_T, 'title="{{ name }}",', 'title="{{ name }} API",')  # not committed
    assert upgrade() == 0
    assert 'title="orders-svc API"' in (repo / MAIN).read_text()
    assert "warning: service_templates/fastapi has uncommitted changes" in capsys.readouterr().err


def test_generated_artifacts_are_regenerated_with_the_upgrade(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for item in ("compose.yaml", ".env.example", "compose"):
        source = REPO_ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item)
        else:
            shutil.copy2(source, repo / item)
    assert main(["regenerate"]) == 0
    commit(repo, "generated artifacts with orders-svc")
    before = (repo / "compose.yaml").read_text()
    capsys.readouterr()
    assert upgrade("--answer", "redis=true") == 0
    assert "regenerate compose.yaml" in capsys.readouterr().out
    after = (repo / "compose.yaml").read_text()
    assert after != before
    assert main(["regenerate", "--check"]) == 0  # nothing left stale


def test_sigkill_between_stack_files_completes_on_recovery(origin: Path, tmp_path: Path) -> None:
    """A template change to the stack entries: killed after the first stack file, the next run finishes."""
    base = tmp_path / "base"
    shutil.copytree(origin, base, symlinks=True)
    edit(base, "service_templates/fastapi/template.yaml", "prod: {replicas: 3,", "prod: {replicas: 4,")
    edit(base, "service_templates/fastapi/template.yaml", "staging: {replicas: 2}", "staging: {replicas: 3}")
    commit(base, "template: bigger defaults")
    done = tmp_path / "done"
    shutil.copytree(base, done, symlinks=True)
    assert _platform(done, "upgrade-service", NAME).returncode == 0
    root = tmp_path / "repo"
    shutil.copytree(base, root, symlinks=True)
    env = {**os.environ, PAUSE_ENV: "stack", "PLATFORM_SCAFFOLD_PAUSE_SECONDS": "30"}
    proc = subprocess.Popen(
        [str(PLATFORM), "upgrade-service", NAME],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "paused at stack"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert tree_digest(root / SVC) == tree_digest(done / SVC)
    for stack in ("staging", "prod"):
        text = (root / f"stacks/Pulumi.{stack}.yaml").read_bytes()
        assert text in (
            (base / f"stacks/Pulumi.{stack}.yaml").read_bytes(),
            (done / f"stacks/Pulumi.{stack}.yaml").read_bytes(),
        )
    listed = _platform(root, "services", "list")
    assert f"recovered an interrupted `upgrade` of {NAME}: completed" in listed.stderr
    assert _digest(root) == _digest(done)


def test_manifest_key_changed_on_both_sides_falls_back_to_inline_markers(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(repo, f"{SVC}/service.yaml", 'description: "orders-svc service"', 'description: "Orders"')
    commit(repo, "user: description")
    assert upgrade("--answer", "description=Orders and invoices") == 1
    text = (repo / SVC / "service.yaml").read_text()
    assert f'<<<<<<< {SVC}/service.yaml (yours)\ndescription: "Orders"\n=======\n' in text
    assert 'description: "Orders and invoices"\n>>>>>>> ' in text
    assert f"conflict  {SVC}/service.yaml" in capsys.readouterr().out


def test_manifest_keys_added_at_the_end_by_both_sides_merge_key_by_key(repo: Path) -> None:
    with (repo / TEMPLATE / "service.yaml.jinja").open("a") as f:
        f.write("gateway: {body_limit: 64k}\n")
    commit(repo, "template: body limit")
    with (repo / SVC / "service.yaml").open("a") as f:
        f.write("# page size for listing orders\nenv: {ORDERS_PAGE_SIZE: '50'}\n")
    commit(repo, "user: env")
    assert upgrade() == 0
    text = (repo / SVC / "service.yaml").read_text()
    assert "<<<<<<<" not in text
    data = yaml.safe_load(text)
    assert data["gateway"] == {"body_limit": "64k"}
    assert data["env"] == {"ORDERS_PAGE_SIZE": "50"}
    assert "# page size for listing orders\n" in text
