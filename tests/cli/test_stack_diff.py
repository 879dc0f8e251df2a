"""`platform diff`: the engine's plan between a git ref and the working tree; secrets never shown.

The plan's rules have their own tests (tests/infra/lifecycle); here: the formats and the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import fork as fork_module
from infra.diff import MARKDOWN_LIMIT, change_lines, format_json, format_markdown, format_text
from infra.errors import PlatformError, UsageError
from infra.fork import render_both
from infra.lifecycle.plan import FieldChange, Hazard, Plan, Step, field_changes, plan
from infra.lifecycle.snapshot import Resource, Snapshot
from tests.infra.deploy.repo import IGNORE, REPO, copy_repo, git

PLATFORM = str(Path(sys.executable).parent / "platform")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git copy of the repo with one commit (HEAD)."""
    return copy_repo(tmp_path / "repo")


def platform(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


# ---------------------------------------------------------------- formats


def deployment(memory: str, image: str = "web:1") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "proxy:1"},
                        {"name": "app", "image": image, "resources": {"limits": {"memory": memory}}},
                    ]
                },
            },
        },
    }


def snapshot(*manifests: dict, digests: dict[str, str] | None = None) -> Snapshot:
    """Objects behind a provider with mutable ConfigMaps and Secrets (as the program's)."""
    provider = Resource("k8s", "pulumi:providers:kubernetes", inputs={"enableSecretMutable": "true"})
    resources = {"k8s": provider}
    for m in manifests:
        name = f"{m['kind'].lower()}-{m['metadata']['name']}"
        digest = (digests or {}).get(m["metadata"]["name"])
        resources[name] = Resource(
            name, f"kubernetes:x:{m['kind']}", provider="k8s", manifest=m, digest=digest
        )
    return Snapshot("dev", resources)


def test_changes_name_list_items_and_quote_dotted_keys() -> None:
    changes = field_changes(deployment("256Mi"), deployment("512Mi"))
    assert [c.text for c in changes] == ["spec.template.spec.containers[name=app].resources.limits.memory"]
    dotted = field_changes(
        {"metadata": {"labels": {"app.kubernetes.io/name": "a"}}}, {"metadata": {"labels": {}}}
    )
    assert [c.text for c in dotted] == ['metadata.labels["app.kubernetes.io/name"]']


def test_multiline_text_gets_a_unified_diff() -> None:
    change = field_changes({"data": {"nginx.conf": "a\nb\nc\n"}}, {"data": {"nginx.conf": "a\nB\nc\n"}})[0]
    lines = change_lines(change)
    assert lines[0] == '~ data["nginx.conf"]: text changed'
    assert "    -b" in lines
    assert "    +B" in lines


def test_text_names_the_operation_and_why_a_workload_rolls() -> None:
    result = plan(snapshot(deployment("1Gi")), snapshot(deployment("1Gi", "web:2")), "main")
    text = format_text(result)
    assert text.splitlines()[0] == (
        "stack dev: main -> working tree: 0 to create, 1 to update, 0 to replace, 0 to delete, "
        "1 rolling, 0 unchanged"
    )
    assert "rules: pulumi-kubernetes 4.34.2" in text.splitlines()[1]
    assert "~ update Deployment/web  (rolls: image of app: web:2)" in text
    assert "    ~ spec.template.spec.containers[name=app].image: web:1 -> web:2" in text


def test_secret_values_never_appear_only_their_digests() -> None:
    meta = {"name": "db", "namespace": "ns"}
    old = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"password": "<redacted>"}}
    result = plan(snapshot(old, digests={"db": "a" * 64}), snapshot(old, digests={"db": "b" * 64}))
    assert [(s.op, s.ref) for s in result.steps] == [("update", "Secret/db")]
    outputs = [format_text(result), format_markdown(result), json.dumps(format_json(result))]
    for out in outputs:
        assert "a" * 13 not in out
    assert "~ stringData (content digest): aaaaaaaaaaaa -> bbbbbbbbbbbb" in outputs[0]


def test_markdown_leads_with_hazards_then_the_table_and_stays_under_the_limit() -> None:
    big = "x" * 400
    steps = [
        Step(
            "update",
            f"ConfigMap/cm-{i}",
            "ConfigMap",
            f"cm-{i}",
            "kubernetes:core/v1:ConfigMap",
            changes=[FieldChange(("data", f"k{j}"), f"data.k{j}", big, big + "y") for j in range(5)],
        )
        for i in range(400)
    ]
    steps[0].rolls = ["ConfigMap cm-0 changed"]
    hazard = Hazard("data-store-replaced", "StatefulSet/postgres", "replaced", "spec.volumeClaimTemplates")
    md = format_markdown(Plan("prod", "main", steps, unchanged=3, hazards=[hazard]))
    assert len(md) < MARKDOWN_LIMIT
    assert md.index("#### ⚠️ Hazards") < md.index("| Operation | Object | Why |") < md.index("<details>")
    assert "| ✏️ update, **rolls** | `ConfigMap/cm-0` | rolls: ConfigMap cm-0 changed |" in md
    assert "Output truncated to stay under 60,000 characters" in md
    assert "`platform diff --stack prod --base main`" in md


def test_markdown_without_changes() -> None:
    md = format_markdown(Plan("dev", "main", [], unchanged=5))
    assert "No changes to Kubernetes objects." in md
    assert "0 to create, 0 to update, 0 to replace, 0 to delete, 0 rolling, 5 unchanged" in md


# ---------------------------------------------------------------- end to end


def test_stack_change_shows_field_paths(repo: Path) -> None:
    stack_file = repo / "stacks" / "Pulumi.dev.yaml"
    stack_file.write_text(
        stack_file.read_text().replace(
            "    auth-svc: {replicas: 1}",
            "    auth-svc:\n      replicas: 1\n      resources:\n"
            "        requests: {cpu: 100m, memory: 128Mi}\n        limits: {cpu: 500m, memory: 512Mi}",
        )
    )
    proc = platform(repo, "diff", "--stack", "dev", "--base", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert "~ update Deployment/auth-svc  (rolls: pod template: " in proc.stdout
    assert "~ spec.template.spec.containers[name=app].resources.limits.memory: 256Mi -> 512Mi" in proc.stdout
    proc = platform(repo, "diff", "--stack", "dev", "--base", "HEAD", "--json")
    data = json.loads(proc.stdout)
    steps = {s["ref"]: s for s in data["steps"]}
    assert set(steps) == {"Deployment/auth-svc", "Job/auth-svc-migrate"}
    assert steps["Deployment/auth-svc"]["op"] == "update"
    assert steps["Deployment/auth-svc"]["rolls"] is True
    # A Job's template is immutable: the migration Job (same resources) is replaced and runs again.
    assert steps["Job/auth-svc-migrate"]["operation"] == "replace (delete first)"
    assert steps["Job/auth-svc-migrate"]["notes"][0] == "runs again"
    assert data["hazards"] == []


def test_base_rendered_with_its_own_code_and_secrets_masked(repo: Path) -> None:
    """The base tree's code differs (a label) and its renderer leaks secrets (patched): the plan shows
    the base's own objects, and never a secret."""
    offline = repo / "infra" / "offline.py"
    offline.write_text(offline.read_text().replace('REDACTED = "<redacted>"', 'REDACTED = "LEAKED-SECRET"'))
    labels = repo / "infra" / "labels.py"
    labels.write_text(labels.read_text().replace('"app.kubernetes.io/part-of"', '"example.com/part-of"'))
    git(repo, "commit", "-q", "-am", "leaky renderer, other labels")
    git(repo, "revert", "--no-edit", "HEAD")
    old, new = render_both(repo, "HEAD~1", "dev")
    result = plan(old, new, "HEAD~1")
    assert len(result.steps) > 50  # every object's labels differ: the base ran its own code
    for out in (format_text(result), format_markdown(result), json.dumps(format_json(result))):
        assert "LEAKED-SECRET" not in out
    assert "LEAKED-SECRET" not in json.dumps(old.to_json())


def test_unknown_ref_is_exit_2_with_hint(repo: Path) -> None:
    proc = platform(repo, "diff", "--stack", "dev", "--base", "no-such-branch")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: unknown git ref 'no-such-branch'",
        "hint: fetch it first (e.g. git fetch origin main) or pass a branch, tag or commit that exists",
    ]


def test_outside_git_is_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    shutil.copytree(REPO / "stacks", root / "stacks")
    shutil.copy(REPO / "Pulumi.yaml", root)
    shutil.copytree(REPO / "services", root / "services", ignore=IGNORE)
    shutil.copytree(REPO / "frontend", root / "frontend", ignore=IGNORE)
    proc = platform(root, "diff", "--stack", "dev", "--base", "HEAD")
    assert proc.returncode == 2
    assert "is not inside a git repository" in proc.stderr


def test_broken_working_tree_code_is_reported_in_one_line(repo: Path) -> None:
    program = repo / "infra" / "platform.py"
    program.write_text(program.read_text() + "\ndef broken(:\n")
    proc = platform(repo, "diff", "--stack", "dev", "--base", "HEAD")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith("error: rendering the working tree failed (exit 1): ")
    assert "SyntaxError" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_renders_in_a_process_that_already_has_an_event_loop(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked renders must not reuse this process's loop: its executor's threads do not exist there."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))  # as an in-process render leaves it
    monkeypatch.setattr(fork_module, "RENDER_TIMEOUT_S", 60.0)  # a stuck render fails instead of hanging
    try:
        old, new = render_both(repo, "HEAD", "dev")
    finally:
        loop.close()
        asyncio.set_event_loop_policy(None)  # a fresh policy: the next get_event_loop() makes a loop
    assert old.to_json() == new.to_json()


def test_a_stuck_render_is_killed_and_reported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = repo / "infra" / "platform.py"
    program.write_text(program.read_text() + "\nimport time\ntime.sleep(3600)\n")
    monkeypatch.setattr(fork_module, "RENDER_TIMEOUT_S", 5.0)
    with pytest.raises(PlatformError, match=r"rendering the working tree did not finish within 5 s"):
        render_both(repo, "HEAD", "dev")


def test_working_tree_renders_in_this_process_when_it_runs_that_code(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[Path] = []
    fork_render = fork_module._fork_render
    monkeypatch.setattr(fork_module, "_loaded_from", lambda tree: tree == repo)
    monkeypatch.setattr(
        fork_module, "_fork_render", lambda tree, *a: forked.append(tree) or fork_render(tree, *a)
    )
    old, new = render_both(repo, "HEAD", "dev")
    assert len(forked) == 1  # only the base was forked
    assert forked[0] != repo
    assert old.to_json() == new.to_json()


def test_working_tree_spec_error_rendered_in_this_process_names_the_tree(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fork_module, "_loaded_from", lambda tree: tree == repo)
    stack_file = repo / "stacks" / "Pulumi.dev.yaml"
    text = stack_file.read_text()
    stack_file.write_text(text.replace("auth-svc: {replicas: 1}", "auth-svc: {replicas: -1}"))
    with pytest.raises(PlatformError, match=r"^working tree: .*replicas"):
        render_both(repo, "HEAD", "dev")


def test_waiting_without_pidfd_polls_until_the_child_exits(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS has no os.pidfd_open: the renders are still collected, and a stuck one is killed."""
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    old, new = render_both(repo, "HEAD", "dev")
    assert old.to_json() == new.to_json()
    program = repo / "infra" / "platform.py"
    program.write_text(program.read_text() + "\nimport time\ntime.sleep(3600)\n")
    monkeypatch.setattr(fork_module, "RENDER_TIMEOUT_S", 3.0)
    with pytest.raises(PlatformError, match="did not finish within 3 s"):
        render_both(repo, "HEAD", "dev")


def test_without_fork_it_is_a_usage_error_with_a_hint(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    with pytest.raises(UsageError, match="no fork") as failure:
        render_both(repo, "HEAD", "dev")
    assert "WSL" in failure.value.hint
