"""Every committed generated artifact, rendered for a tree, and :func:`regenerate` that rewrites them.

The artifacts derived from the spec (and from the services' code) that a checkout commits:

- ``compose.yaml``, ``.env.example`` and ``compose/*`` (``platform compose -o compose.yaml``, stack dev);
- ``docs/spec.md`` and ``docs/gateway.md`` (``python -m infra.docs_gen``);
- ``docs/events.md`` (``python -m servicekit.events_doc``; it imports every service's ``events.py``, so
  it is rendered in a child interpreter: the parent's event registry stays untouched).

Only artifacts the target checkout already has are regenerated (a minimal copy without ``docs/`` or
``compose.yaml`` stays minimal). ``new-service`` and ``services remove`` render them for the tree *as it
will be* (an overlay) and stage them with the rest of the change (:mod:`infra.scaffold.apply`);
:func:`regenerate` is the one-call form for any other command that changed the spec (upgrade-service).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.errors import PlatformError

#: The stack whose config sizes compose.yaml (what ``platform compose`` defaults to).
COMPOSE_STACK = "dev"
COMPOSE_FILE = "compose.yaml"
EVENTS_PAGE = "docs/events.md"
_EVENTS_SCRIPT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from servicekit.events_doc import discover, registry, render_events_md\n"
    "publishers, consumers = discover(Path(sys.argv[1]))\n"
    "sys.stdout.write(render_events_md(registry, publishers, consumers, only=set(publishers)))\n"
)


def _compose_texts(source: Path) -> dict[str, str]:
    from infra.render.compose import generated_files, render_compose_yaml, render_env_example
    from infra.spec import load_spec

    spec = load_spec(COMPOSE_STACK, source)
    return {
        COMPOSE_FILE: render_compose_yaml(spec),
        ".env.example": render_env_example(spec),
        **generated_files(spec),
    }


def _events_text(source: Path, python: str) -> str:
    out = subprocess.run(
        [python, "-c", _EVENTS_SCRIPT, str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PlatformError(
            f"could not regenerate {EVENTS_PAGE}: {tail}",
            hint="fix the service's events.py (it must import cleanly), then run "
            "`python -m servicekit.events_doc`",
        )
    return out.stdout


def _doc_pages() -> tuple[str, ...]:
    from infra import docs_gen

    return tuple(docs_gen.PAGES)


def render_generated(source: Path, target: Path, *, events: bool = True) -> dict[str, str]:
    """Text of every generated artifact *target* commits, rendered from the tree at *source*.

    *source* may be an overlay of *target* (the tree as a change will leave it); paths are relative.
    ``events=False`` leaves ``docs/events.md`` out (a change that cannot alter it).
    """
    texts: dict[str, str] = {}
    if (target / COMPOSE_FILE).is_file():
        texts |= _compose_texts(source)
    from infra import docs_gen

    for rel, generate in docs_gen.PAGES.items():
        if (target / rel).is_file():
            texts[rel] = generate(source) if generate is docs_gen.gateway_reference else generate()
    if events and (target / EVENTS_PAGE).is_file():
        texts[EVENTS_PAGE] = _events_text(source, sys.executable)
    return texts


def changed(target: Path, texts: dict[str, str]) -> dict[str, str]:
    """The subset of *texts* that differs from what *target* holds."""
    out = {}
    for rel, text in texts.items():
        path = target / rel
        try:
            current = path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            current = None
        if current != text:
            out[rel] = text
    return out


def write_atomically(target: Path, rel: str, text: str) -> None:
    """Write ``target/rel`` through a temp file and ``os.replace`` (the old mode is kept)."""
    path = target / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def regenerate(root: Path) -> list[str]:
    """Rewrite every generated artifact of the checkout at *root* that is stale; return their paths.

    Each file is replaced atomically (temp file + rename); unchanged files are not touched.
    """
    stale = changed(root, render_generated(root, root))
    for rel, text in sorted(stale.items()):
        write_atomically(root, rel, text)
    return sorted(stale)


def render_change(
    root: Path,
    stack_texts: dict[str, str],
    *,
    add: dict[str, Path] | None = None,
    drop: tuple[str, ...] = (),
    events: bool = True,
) -> dict[str, str]:
    """The generated artifacts of *root* that a change would alter, rendered for the changed tree.

    The change: stack files with *stack_texts* (stack -> text; others unchanged), services *add* (name
    -> a complete folder, e.g. a staged copy) and services *drop*-ped. Nothing in *root* is written.
    """
    if not any((root / rel).is_file() for rel in (COMPOSE_FILE, EVENTS_PAGE, *_doc_pages())):
        return {}  # a checkout without generated artifacts (a scratch copy): nothing to render
    from infra.spec import WEB_APP_DIRS

    with tempfile.TemporaryDirectory(prefix="platform-regen-") as tmp:
        view = Path(tmp)
        (view / "stacks").mkdir()
        (view / "services").mkdir()
        for file in (root / "stacks").glob("Pulumi.*.yaml"):
            stack = file.name.removeprefix("Pulumi.").removesuffix(".yaml")
            if stack in stack_texts:
                (view / "stacks" / file.name).write_text(stack_texts[stack], encoding="utf-8")
            else:
                (view / "stacks" / file.name).symlink_to(file.resolve())
        for manifest in (root / "services").glob("*/service.yaml"):
            name = manifest.parent.name
            if name not in drop and name not in (add or {}):
                (view / "services" / name).symlink_to(manifest.parent.resolve(), target_is_directory=True)
        for name, folder in (add or {}).items():
            (view / "services" / name).symlink_to(folder.resolve(), target_is_directory=True)
        for folder in WEB_APP_DIRS:  # the web app is in the spec too (the stacks size it)
            if (root / folder / "service.yaml").is_file():
                (view / folder).symlink_to((root / folder).resolve(), target_is_directory=True)
        return changed(root, render_generated(view, root, events=events))
