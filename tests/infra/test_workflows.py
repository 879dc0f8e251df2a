"""The GitHub Actions workflows, proven offline: the github-workflows schema, actionlint (with
shellcheck on every `run:` script) and the project's own rules: timeouts, pins, least privilege,
promotion order. docs/ci.md describes the workflows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.spec import available_stacks

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
DEPLOY_SCRIPT = GITHUB / "scripts" / "deploy-stack.sh"
BIN = Path(sys.executable).parent

#: ``owner/repo[/path]@<40-hex commit> # vMAJOR.MINOR.PATCH``: the release the commit was verified as.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(?P<sha>[0-9a-f]{40}) # (?P<version>v\d+\.\d+\.\d+)$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>.+?)\s*$")
#: (workflow file, job id) -> the scopes it may write. Everything else reads.
WRITE_GRANTS = {("ci.yml", "platform-diff"): {"pull-requests"}}
PROMOTION = ["dev", "staging", "prod"]


def load(path: Path) -> dict[str, Any]:
    """A workflow as data (YAML 1.2, so the ``on:`` key stays a string)."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def jobs(name: str) -> dict[str, dict[str, Any]]:
    return load(GITHUB / "workflows" / name)["jobs"]


def uses_refs(path: Path) -> list[str]:
    """Every ``uses:`` value of a workflow or action file, as written (with its trailing comment)."""
    return [m["ref"] for line in path.read_text().splitlines() if (m := USES_LINE.match(line))]


def run(argv: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def shellcheck() -> str:
    found = shutil.which("shellcheck")
    assert found, "shellcheck is not installed (Debian package `shellcheck`; scripts/bootstrap.sh's apt list)"
    return found


def test_the_workflows_are_there() -> None:
    assert {"ci.yml", "deploy.yml"} <= {p.name for p in WORKFLOWS}


def test_workflows_match_the_github_workflows_schema() -> None:
    proc = run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_composite_actions_match_the_github_action_schema() -> None:
    assert ACTIONS, "no composite actions under .github/actions"
    proc = run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", *ACTIONS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_and_shellcheck_find_nothing(shellcheck: str) -> None:
    proc = run([BIN / "actionlint", "-oneline", "-shellcheck", shellcheck, *WORKFLOWS], cwd=REPO)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stdout + proc.stderr


def test_action_inputs_exist_in_the_pinned_releases(tmp_path: Path) -> None:
    """actionlint knows each action's inputs by release tag, not by commit: check the workflows with
    every pin read as the major version of its comment (``@<sha> # v5.0.2`` -> ``@v5``)."""
    shutil.copytree(GITHUB, tmp_path / ".github")
    run(["git", "init", "-q", tmp_path])  # actionlint resolves ./.github/actions from the git root
    rewritten = 0
    for path in [
        *(tmp_path / ".github").glob("workflows/*.yml"),
        *(tmp_path / ".github").glob("actions/*/*.yml"),
    ]:
        text, count = re.subn(r"@[0-9a-f]{40} # (v\d+)[.\d]*", r"@\1", path.read_text())
        path.write_text(text)
        rewritten += count
    pinned = [ref for path in [*WORKFLOWS, *ACTIONS] for ref in uses_refs(path) if not ref.startswith("./")]
    assert rewritten == len(pinned) > 0
    proc = run([BIN / "actionlint", "-oneline", "-shellcheck", ""], cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stdout + proc.stderr


def test_every_job_has_a_timeout() -> None:
    missing = [
        f"{wf.name}:{job_id}"
        for wf in WORKFLOWS
        for job_id, job in load(wf)["jobs"].items()
        if not isinstance(job.get("timeout-minutes"), int)
    ]
    assert missing == []


def test_every_action_is_pinned_to_a_commit_with_its_release() -> None:
    unpinned = [
        f"{path.relative_to(REPO)}: {ref}"
        for path in [*WORKFLOWS, *ACTIONS]
        for ref in uses_refs(path)
        if not ref.startswith("./") and not PINNED.match(ref)
    ]
    assert unpinned == []


def test_each_action_has_one_pin() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, *ACTIONS]:
        for ref in uses_refs(path):
            if not ref.startswith("./"):
                pins.setdefault(ref.split("@")[0], set()).add(ref)
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}


def test_checkout_never_persists_the_token() -> None:
    leaky = [
        f"{wf.name}:{job_id}"
        for wf in WORKFLOWS
        for job_id, job in load(wf)["jobs"].items()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("actions/checkout@")
        and (step.get("with") or {}).get("persist-credentials") is not False
    ]
    assert leaky == []


def test_top_level_permissions_are_read_only() -> None:
    for wf in WORKFLOWS:
        permissions = load(wf).get("permissions")
        assert isinstance(permissions, dict), f"{wf.name}: no top-level permissions map"
        assert set(permissions.values()) <= {"read", "none"}, f"{wf.name}: {permissions}"


def test_write_scopes_only_on_the_jobs_that_need_them() -> None:
    grants = {
        (wf.name, job_id): {scope for scope, level in job["permissions"].items() if level == "write"}
        for wf in WORKFLOWS
        for job_id, job in load(wf)["jobs"].items()
        if isinstance(job.get("permissions"), dict)
    }
    assert {key: scopes for key, scopes in grants.items() if scopes} == WRITE_GRANTS


def test_secrets_reach_steps_only_through_their_env() -> None:
    """Never ``${{ secrets.X }}`` inside a script (it would be pasted into the shell source), nor in a
    workflow- or job-wide env that every step would inherit."""
    misplaced = []
    for wf in WORKFLOWS:
        data = load(wf)
        if "secrets." in str(data.get("env", "")):
            misplaced.append(f"{wf.name}: env")
        for job_id, job in data["jobs"].items():
            if "secrets." in str(job.get("env", "")):
                misplaced.append(f"{wf.name}:{job_id}: env")
            misplaced += [
                f"{wf.name}:{job_id}: {step.get('name', step.get('run'))}"
                for step in job.get("steps", [])
                if "secrets." in str(step.get("run", "")) or "secrets." in str(step.get("with", ""))
            ]
    assert misplaced == []


def test_ci_cancels_superseded_runs() -> None:
    concurrency = load(GITHUB / "workflows" / "ci.yml")["concurrency"]
    assert concurrency["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in concurrency["group"]


def test_ci_matrices_cover_every_stack() -> None:
    ci = jobs("ci.yml")
    for job_id in ("platform-check", "platform-diff"):
        assert ci[job_id]["strategy"]["matrix"]["stack"] == PROMOTION, job_id
    assert sorted(PROMOTION) == available_stacks(REPO)


def test_diff_job_fetches_the_base_branch() -> None:
    steps = jobs("ci.yml")["platform-diff"]["steps"]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    assert any('--base "origin/$BASE_REF"' in s.get("run", "") for s in steps)


def test_deploy_promotes_dev_then_staging_then_prod() -> None:
    deploy = jobs("deploy.yml")
    assert list(deploy) == PROMOTION
    for previous, stack in zip([None, *PROMOTION[:-1]], PROMOTION, strict=True):
        job = deploy[stack]
        assert job["environment"] == stack
        assert job.get("needs") == previous, stack
        assert any(s.get("run") == f".github/scripts/deploy-stack.sh {stack}" for s in job["steps"]), stack


def test_deploy_never_cancels_a_running_deployment() -> None:
    workflow = load(GITHUB / "workflows" / "deploy.yml")
    assert "concurrency" not in workflow
    for stack, job in workflow["jobs"].items():
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}


def test_deploy_installs_the_pulumi_cli_of_the_sdk_pin() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    sdk = next(d.split("==")[1] for d in deps if d.startswith("pulumi=="))
    assert load(GITHUB / "workflows" / "deploy.yml")["env"]["PULUMI_VERSION"] == sdk


def test_deploy_script_passes_shellcheck(shellcheck: str) -> None:
    proc = run([shellcheck, DEPLOY_SCRIPT])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_script_without_cluster_credentials_stops_with_a_hint() -> None:
    env = {"PATH": os.environ["PATH"], "PULUMI_ACCESS_TOKEN": "token"}
    proc = run(["bash", DEPLOY_SCRIPT, "staging"], env=env)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: KUBECONFIG_CONTENT is empty",
        "hint: add the secret KUBECONFIG to the GitHub environment 'staging' (docs/ci.md)",
    ]


def _recorder(path: Path, name: str, log: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\n')
    path.chmod(0o755)


def test_deploy_script_creates_the_stack_before_deploying(tmp_path: Path) -> None:
    """A first run on a fresh state backend has no stack yet: `pulumi up --stack X` alone fails."""
    root = tmp_path / "repo"
    (root / ".github" / "scripts").mkdir(parents=True)
    shutil.copy(DEPLOY_SCRIPT, root / ".github" / "scripts" / "deploy-stack.sh")
    (root / "stacks").mkdir()
    shutil.copy(REPO / "stacks" / "Pulumi.staging.yaml", root / "stacks")
    log = tmp_path / "calls.log"
    _recorder(root / ".venv" / "bin" / "platform", "platform", log)
    _recorder(tmp_path / "bin" / "pulumi", "pulumi", log)
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "PULUMI_ACCESS_TOKEN": "token",
        "KUBECONFIG_CONTENT": "apiVersion: v1\nkind: Config\n",
    }
    proc = run(["bash", root / ".github" / "scripts" / "deploy-stack.sh", "staging"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [
        "pulumi stack select --create staging",
        "platform check --stack staging",
        "platform up --stack staging --yes",
    ]


def test_pull_requests_check_the_lifecycle_against_the_base_branch() -> None:
    job = jobs("ci.yml")["platform-check"]
    checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    run_step = next(s for s in job["steps"] if "platform check" in s.get("run", ""))
    assert run_step["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert 'platform check --stack "$STACK" --base "origin/$BASE_REF"' in run_step["run"]
