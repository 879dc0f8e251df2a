"""Service images: built from ``services/<name>/Dockerfile`` and pushed by pulumi_docker.

The build context is the repository root (the Dockerfile copies ``libs/servicekit``), cut down by
``services/<name>/Dockerfile.dockerignore`` to the service's own folder and ``libs/servicekit``:
pulumi-docker (5.2.0, ``hashContext``) hashes every file of the context into the image's
``contextDigest``, so without it any change anywhere (docs, ``.git``, ``.venv``) rebuilt every image,
re-ran every migration and rolled every service. Docker (BuildKit) and pulumi-docker both prefer a
``<Dockerfile>.dockerignore`` to a root ``.dockerignore``. The tag is a content hash of exactly the same
files, so an unchanged service keeps its tag and a changed one always gets a new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.spec import PlatformSpec, ServiceSpec, WebAppSpec

#: Folders and suffixes that never reach an image (caches, local environments, build metadata).
IGNORED_PARTS = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".venv",
        "node_modules",
        ".git",
        "build",
        "dist",
    }
)
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".log")
SERVICEKIT = Path("libs") / "servicekit"
#: Target platform of every image (the clusters run linux/amd64 nodes).
PLATFORM = "linux/amd64"


def image_inputs(service: str) -> list[Path]:
    """The folders (relative to the repository root) an image of *service* is built from."""
    return [Path("services") / service, SERVICEKIT]


def dockerignore_text(service: str) -> str:
    """``services/<service>/Dockerfile.dockerignore``: everything but :func:`image_inputs`, minus caches."""
    lines = [
        "# Generated from infra/components/image.py (dockerignore_text); `platform check` compares.",
        "# The build context is the repository root: only this service and libs/servicekit reach it,",
        "# so a change anywhere else neither rebuilds the image nor changes its tag.",
        "*",
        *(f"!{folder.as_posix()}" for folder in image_inputs(service)),
        *(f"**/{part}" for part in sorted(IGNORED_PARTS)),
        *(f"**/*{suffix}" for suffix in IGNORED_SUFFIXES),
    ]
    return "\n".join(lines) + "\n"


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part in IGNORED_PARTS or part.endswith(IGNORED_SUFFIXES) for part in path.parts)
    )


def image_files(root: Path, service: str) -> list[Path]:
    """Every file of *service*'s build context under *root* (what the Dockerfile.dockerignore keeps)."""
    return [path for folder in image_inputs(service) for path in _files(root / folder)]


def content_tag(root: Path, service_dir: Path, length: int = 12) -> str:
    """Deterministic tag: sha256 over relative path + bytes of every file of the build context."""
    digest = hashlib.sha256()
    for path in image_files(root, service_dir.name):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:length]


def repo_root(service: ServiceSpec) -> Path:
    """The repository root a service lives in (``<root>/services/<name>``)."""
    return service.path.parent.parent


def image_name(spec: PlatformSpec, service: ServiceSpec) -> str:
    """``<registry>/<svc>:<content tag>``."""
    return f"{spec.config.registry}/{service.name}:{content_tag(repo_root(service), service.path)}"


def service_image(
    resource_name: str, spec: PlatformSpec, service: ServiceSpec, opts: pulumi.ResourceOptions
) -> docker.Image:
    """The docker Image resource: context is the repo root so the Dockerfile can copy servicekit.

    Paths are relative to the repository root, which is the Pulumi project directory (the program's
    working directory under ``pulumi up``).
    """
    root = repo_root(service)
    return docker.Image(
        resource_name,
        image_name=image_name(spec, service),
        build={
            "context": ".",
            "dockerfile": (service.path / "Dockerfile").relative_to(root).as_posix(),
            "platform": PLATFORM,
        },
        skip_push=False,
        opts=opts,
    )


def pinned_reference(image: docker.Image) -> pulumi.Output[str]:
    """The registry digest (``repo@sha256:...``) once pushed; the content-hash tag when none exists
    (offline renders, where nothing is pushed)."""
    return pulumi.Output.all(image.image_name, image.repo_digest).apply(lambda pair: pair[1] or pair[0])


#: What never reaches the web app's build context (its folder): local installs and builds, test
#: output, local env files, what ``next build`` generates (``next-env.d.ts``; git ignores it too, so a
#: build in the working tree never changes the tag). ``frontend/.dockerignore`` is exactly
#: :func:`web_dockerignore_text`.
WEB_IGNORED = ("node_modules", ".next", "out", "coverage", "test-results", "playwright-report")
WEB_IGNORED_FILES = ("*.log", ".env*", "*.tsbuildinfo", "next-env.d.ts")


def web_dockerignore_text() -> str:
    """The web app's ``.dockerignore`` (its context is its own folder); `platform check` compares."""
    lines = [
        "# Generated from infra/components/image.py (web_dockerignore_text); `platform check` compares.",
        "# Local installs and builds never reach the image's context: npm ci and next build run inside.",
        *WEB_IGNORED,
        *WEB_IGNORED_FILES,
    ]
    return "\n".join(lines) + "\n"


def web_image_files(app: WebAppSpec) -> list[Path]:
    """Every file of the web app's build context (its folder minus what ``.dockerignore`` drops)."""
    import fnmatch

    return sorted(
        path
        for path in app.path.rglob("*")
        if path.is_file()
        and not any(part in WEB_IGNORED for part in path.relative_to(app.path).parts)
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in WEB_IGNORED_FILES)
    )


def web_image_name(spec: PlatformSpec, app: WebAppSpec, length: int = 12) -> str:
    """``<registry>/<app>:<content tag>`` over the app folder's files (as the Docker context sees them)."""
    digest = hashlib.sha256()
    for path in web_image_files(app):
        digest.update(path.relative_to(app.path).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return f"{spec.config.registry}/{app.name}:{digest.hexdigest()[:length]}"


def web_image(
    resource_name: str, spec: PlatformSpec, app: WebAppSpec, opts: pulumi.ResourceOptions
) -> docker.Image:
    """The web app's image: ``frontend/Dockerfile`` (multi-stage: ``npm ci``, ``next build``, then the
    standalone server alone) with the app's folder as context (``frontend/.dockerignore`` leaves
    ``node_modules`` and ``.next`` out)."""
    root = app.path.parent
    context = app.path.relative_to(root).as_posix()
    return docker.Image(
        resource_name,
        image_name=web_image_name(spec, app),
        build={"context": context, "dockerfile": f"{context}/Dockerfile", "platform": PLATFORM},
        skip_push=False,
        opts=opts,
    )
