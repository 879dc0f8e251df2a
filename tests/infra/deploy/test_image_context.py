"""Defect A4: pulumi-docker hashes the whole build context (the repository root); without an ignore file
any change anywhere - docs, .git, .venv - changed every image. Each service's build context is cut to its
own folder and libs/servicekit by ``services/<name>/Dockerfile.dockerignore`` (pulumi-docker 5.2.0's
hashContext and BuildKit both prefer ``<Dockerfile>.dockerignore`` to a root .dockerignore), and the image
tag hashes exactly those files. Docker's own matcher (docker-py) decides what is in the context."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from infra.components.image import content_tag, dockerignore_text, image_files
from infra.spec import REPO_ROOT, load_spec

SERVICES = [svc.name for svc in load_spec("dev").services]


def context_files(root: Path, service: str) -> set[str]:
    """Regular files Docker sends for ``services/<service>/Dockerfile`` with context ``root``."""
    dockerfile = f"services/{service}/Dockerfile"
    ignore = root / f"{dockerfile}.dockerignore"
    patterns = [
        line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    return {p for p in exclude_paths(str(root), patterns, dockerfile) if (root / p).is_file()}


@pytest.mark.parametrize("service", SERVICES)
def test_the_ignore_file_is_the_generated_one(service: str) -> None:
    assert (REPO_ROOT / "services" / service / "Dockerfile.dockerignore").read_text() == dockerignore_text(
        service
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_context_is_the_service_and_servicekit_and_the_tag_hashes_exactly_it(service: str) -> None:
    files = context_files(REPO_ROOT, service)
    assert files == {p.relative_to(REPO_ROOT).as_posix() for p in image_files(REPO_ROOT, service)}
    assert f"services/{service}/Dockerfile" in files
    assert any(f.startswith("libs/servicekit/servicekit/") for f in files)
    assert not [f for f in files if not f.startswith((f"services/{service}/", "libs/servicekit/"))]
    assert not [f for f in files if "__pycache__" in f or ".egg-info" in f or f.endswith(".pyc")]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The parts of the repository an image can see, plus docs/ and a .git/ and .venv/ of noise."""
    root = tmp_path / "repo"
    for part in ("services", "libs/servicekit", "docs"):
        shutil.copytree(
            REPO_ROOT / part,
            root / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".*cache"),
        )
    for noise in (".git/HEAD", ".venv/lib/site.py"):
        (root / noise).parent.mkdir(parents=True, exist_ok=True)
        (root / noise).write_text("noise\n")
    return root


def tags(root: Path) -> dict[str, str]:
    return {svc: content_tag(root, root / "services" / svc) for svc in SERVICES}


def contexts(root: Path) -> dict[str, set[str]]:
    return {svc: {f: (root / f).read_bytes() for f in context_files(root, svc)} for svc in SERVICES}


def test_a_change_outside_the_inputs_changes_no_image(tree: Path) -> None:
    before, seen = tags(tree), contexts(tree)
    (tree / "docs" / "deploy.md").write_text("changed\n")
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    (tree / ".venv" / "lib" / "site.py").write_text("changed\n")
    (tree / "services" / "auth-svc" / "auth_svc" / "__pycache__").mkdir()
    (tree / "services" / "auth-svc" / "auth_svc" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert tags(tree) == before
    assert contexts(tree) == seen


def test_a_change_in_one_service_changes_only_its_image(tree: Path) -> None:
    before, seen = tags(tree), contexts(tree)
    main = tree / "services" / "chat-svc" / "chat_svc" / "main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    after, now = tags(tree), contexts(tree)
    assert [svc for svc in SERVICES if after[svc] != before[svc]] == ["chat-svc"]
    assert [svc for svc in SERVICES if now[svc] != seen[svc]] == ["chat-svc"]


def test_a_servicekit_change_changes_every_image(tree: Path) -> None:
    before = tags(tree)
    app = tree / "libs" / "servicekit" / "servicekit" / "app.py"
    app.write_text(app.read_text() + "\n# changed\n")
    after = tags(tree)
    assert all(after[svc] != before[svc] for svc in SERVICES)


def test_a_scaffolded_service_gets_the_same_ignore_file() -> None:
    from infra.scaffold.render import render_files
    from infra.scaffold.template import load_template, resolve_answers

    template = load_template("fastapi", REPO_ROOT)
    answers = resolve_answers(template, {"name": "orders-svc"})
    answers |= {"template_name": "fastapi", "template_commit": "test"}
    files = render_files(template, answers)
    assert files["Dockerfile.dockerignore"].decode() == dockerignore_text("orders-svc")
