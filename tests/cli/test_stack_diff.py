"""`platform diff`: field-level changes between a git ref and the working tree; secrets never shown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import diff as diff_module
from infra.diff import (
    MARKDOWN_LIMIT,
    Change,
    ResourceDiff,
    StackDiff,
    compare,
    diff_manifests,
    format_markdown,
    format_text,
    render_both,
)
from infra.errors import PlatformError, UsageError

REPO = Path(__file__).resolve().parents[2]
PLATFORM = str(Path(sys.executable).parent / "platform")
#: What a clean clone does not have (including git-ignored build/ dirs, which image tags would hash).
IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".tools",
    ".platform",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    "*.egg-info",
    "build",
)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git copy of the repo with one commit (HEAD)."""
    root = tmp_path / "repo"
    shutil.copytree(REPO, root, ignore=IGNORE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def platform(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


# ---------------------------------------------------------------- comparing


def deployment(memory: str, image: str = "web:1") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "proxy:1"},
                        {"name": "app", "image": image, "resources": {"limits": {"memory": memory}}},
                    ]
                }
            }
        },
    }


def test_named_list_items_are_matched_by_name() -> None:
    changes = compare(deployment("256Mi"), deployment("512Mi"))
    assert changes == [
        Change("spec.template.spec.containers[name=app].resources.limits.memory", "changed", "256Mi", "512Mi")
    ]


def test_unnamed_lists_compare_by_index_and_report_added_items() -> None:
    changes = compare({"args": ["a", "b"]}, {"args": ["a", "c", "d"]})
    assert [(c.path, c.op) for c in changes] == [("args[1]", "changed"), ("args[2]", "added")]


def test_dotted_keys_are_quoted() -> None:
    changes = compare({"metadata": {"labels": {"app.kubernetes.io/name": "a"}}}, {"metadata": {"labels": {}}})
    assert [c.path for c in changes] == ['metadata.labels["app.kubernetes.io/name"]']


def test_multiline_text_gets_a_unified_diff() -> None:
    old = {"data": {"nginx.conf": "a\nb\nc\n"}}
    new = {"data": {"nginx.conf": "a\nB\nc\n"}}
    lines = compare(old, new)[0].text_lines()
    assert lines[0] == '~ data["nginx.conf"]: text changed'
    assert "    -b" in lines
    assert "    +B" in lines


def test_added_removed_and_unchanged_objects() -> None:
    svc = {"kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": {}}
    cm = {"kind": "ConfigMap", "metadata": {"name": "web", "namespace": "ns"}, "data": {}}
    result = diff_manifests("dev", "main", [svc, deployment("1Gi")], [svc, cm, deployment("1Gi", "web:2")])
    assert [(r.status, r.ref) for r in result.resources] == [
        ("added", "ConfigMap/web"),
        ("changed", "Deployment/web"),
    ]
    assert result.unchanged == 1
    text = format_text(result)
    assert (
        text.splitlines()[0] == "stack dev: main -> working tree: 1 added, 0 removed, 1 changed, 1 unchanged"
    )
    assert "~ spec.template.spec.containers[name=app].image: web:1 -> web:2" in text


def test_secret_values_never_appear_even_if_the_base_did_not_redact() -> None:
    meta = {"name": "db", "namespace": "ns"}
    old = [
        {"kind": "Secret", "metadata": meta, "data": {"password": "aHVudGVyMg=="}, "stringData": {"x": "s3"}}
    ]
    new = [{"kind": "Secret", "metadata": meta, "data": {"password": "<redacted>", "token": "bmV3LXRva2Vu"}}]
    result = diff_manifests("dev", "main", old, new)
    outputs = [format_text(result), format_markdown(result), json.dumps(result.to_dict())]
    for out in outputs:
        for value in ("aHVudGVyMg==", "bmV3LXRva2Vu", "s3"):
            assert value not in out
    assert "+ data.token: <redacted>" in outputs[0]
    assert '- stringData: {"x":"<redacted>"}' in outputs[0]


def test_markdown_puts_the_summary_first_and_stays_under_the_limit() -> None:
    big = "x" * 400
    resources = [
        ResourceDiff(
            "ConfigMap",
            f"cm-{i}",
            "ns",
            "changed",
            [Change(f"data.k{j}", "changed", big, big + "y") for j in range(5)],
        )
        for i in range(400)
    ]
    md = format_markdown(StackDiff("prod", "main", resources, unchanged=3))
    assert len(md) < MARKDOWN_LIMIT
    assert md.index("| Change | Object | Fields |") < md.index("<details>")
    assert "Output truncated to stay under 60,000 characters" in md
    assert "`platform diff --stack prod --base main`" in md


def test_markdown_without_changes() -> None:
    md = format_markdown(StackDiff("dev", "main", [], unchanged=5))
    assert "No changes to Kubernetes objects." in md
    assert "0 added, 0 removed, 0 changed, 5 unchanged" in md


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
    assert "~ Deployment/auth-svc" in proc.stdout
    assert "~ spec.template.spec.containers[name=app].resources.limits.memory: 256Mi -> 512Mi" in proc.stdout
    proc = platform(repo, "diff", "--stack", "dev", "--base", "HEAD", "--format", "json")
    data = json.loads(proc.stdout)
    assert (data["added"], data["removed"]) == ([], [])
    changed = {(r["kind"], r["name"]) for r in data["changed"]}
    assert ("Deployment", "auth-svc") in changed
    assert ("Deployment", "chat-svc") not in changed


def test_base_rendered_with_its_own_code_and_secrets_masked(repo: Path) -> None:
    """The base tree's renderer leaks secrets (patched); the diff must still not show them."""
    offline = repo / "infra" / "offline.py"
    offline.write_text(offline.read_text().replace('REDACTED = "<redacted>"', 'REDACTED = "LEAKED-SECRET"'))
    git(repo, "commit", "-q", "-am", "leaky renderer")
    git(repo, "revert", "--no-edit", "HEAD")
    old, new = render_both(repo, "HEAD~1", "dev")
    assert "LEAKED-SECRET" in json.dumps(old)  # the base really ran its own (leaky) code
    assert "LEAKED-SECRET" not in json.dumps(new)
    result = diff_manifests("dev", "HEAD~1", old, new)
    for out in (format_text(result), format_markdown(result), json.dumps(result.to_dict())):
        assert "LEAKED-SECRET" not in out
    assert not any(r.kind == "Secret" for r in result.resources)


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
    monkeypatch.setattr(diff_module, "RENDER_TIMEOUT_S", 60.0)  # a stuck render fails instead of hanging
    try:
        old, new = render_both(repo, "HEAD", "dev")
    finally:
        loop.close()
        asyncio.set_event_loop_policy(None)  # a fresh policy: the next get_event_loop() makes a loop
    assert old == new


def test_a_stuck_render_is_killed_and_reported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = repo / "infra" / "platform.py"
    program.write_text(program.read_text() + "\nimport time\ntime.sleep(3600)\n")
    monkeypatch.setattr(diff_module, "RENDER_TIMEOUT_S", 5.0)
    with pytest.raises(PlatformError, match=r"rendering the working tree did not finish within 5 s"):
        render_both(repo, "HEAD", "dev")


def test_working_tree_renders_in_this_process_when_it_runs_that_code(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[Path] = []
    fork_render = diff_module._fork_render
    monkeypatch.setattr(diff_module, "_loaded_from", lambda tree: tree == repo)
    monkeypatch.setattr(
        diff_module, "_fork_render", lambda tree, *a: forked.append(tree) or fork_render(tree, *a)
    )
    old, new = render_both(repo, "HEAD", "dev")
    assert len(forked) == 1  # only the base was forked
    assert forked[0] != repo
    assert old == new


def test_working_tree_spec_error_rendered_in_this_process_names_the_tree(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diff_module, "_loaded_from", lambda tree: tree == repo)
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
    assert old == new
    program = repo / "infra" / "platform.py"
    program.write_text(program.read_text() + "\nimport time\ntime.sleep(3600)\n")
    monkeypatch.setattr(diff_module, "RENDER_TIMEOUT_S", 3.0)
    with pytest.raises(PlatformError, match="did not finish within 3 s"):
        render_both(repo, "HEAD", "dev")


def test_without_fork_it_is_a_usage_error_with_a_hint(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    with pytest.raises(UsageError, match="no fork") as failure:
        render_both(repo, "HEAD", "dev")
    assert "WSL" in failure.value.hint
