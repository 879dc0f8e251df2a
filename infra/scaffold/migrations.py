"""Alembic revisions during an upgrade: existing ones are never rewritten; new ones join the chain.

A database may already have run a revision, so a revision file the service has is never changed by an
upgrade. A revision the template adds is created as a new file whose ``down_revision`` is the service's
current head (the service may have added revisions of its own since it was generated); if its id or
file name is taken by one of the service's revisions, it gets a fresh id.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import PurePosixPath

VERSIONS = "migrations/versions/"


def is_revision(path: str) -> bool:
    return path.startswith(VERSIONS) and path.endswith(".py") and "/" not in path[len(VERSIONS) :]


def ids(source: bytes) -> tuple[str | None, tuple[str, ...]]:
    """(revision, down_revisions) of a revision file, read from its module-level assignments."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None, ()
    found: dict[str, object] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and value is not None:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    revision = found.get("revision")
    down = found.get("down_revision")
    downs = (down,) if isinstance(down, str) else tuple(d for d in down or () if isinstance(d, str))
    return (revision if isinstance(revision, str) else None), downs


def heads(files: dict[str, bytes]) -> list[str]:
    """Revisions no other revision revises (sorted)."""
    graph = {rev: downs for rev, downs in (ids(data) for data in files.values()) if rev}
    pointed = {d for downs in graph.values() for d in downs}
    return sorted(r for r in graph if r not in pointed)


def _literal(value: str | tuple[str, ...] | None) -> str:
    """Python source for a revision id (double quotes, like Alembic's own script template)."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return json.dumps(value)
    return "(" + ", ".join(json.dumps(v) for v in value) + ")"


def _set(source: str, name: str, value: str | tuple[str, ...] | None) -> str:
    literal = _literal(value)
    pattern = re.compile(rf"^({name}\s*(?::[^=\n]*)?=\s*).*$", re.MULTILINE)
    return pattern.sub(lambda m: m.group(1) + literal, source, count=1)


def _docstring(source: str, field: str, value: str) -> str:
    line = f"{field}: {value}".rstrip()
    return re.sub(rf"^{field}:.*$", lambda _: line, source, count=1, flags=re.MULTILINE)


def place_new(
    new: dict[str, bytes], base_revs: set[str], ours: dict[str, bytes], suffix: str
) -> dict[str, tuple[str, bytes]]:
    """New template revisions (path -> text) as the files to create: path -> (final path, text).

    A new revision whose ``down_revision`` is a revision of the old template (or none) is attached to
    the service's head(s) instead; ids and file names taken by the service's own revisions are renamed
    with *suffix* (references among the new revisions follow).
    """
    taken = {rev for rev, _ in (ids(d) for d in ours.values()) if rev}
    renamed: dict[str, str] = {}
    for data in new.values():
        rev, _ = ids(data)
        if rev and rev in taken:
            renamed[rev] = f"{rev}_{suffix}"
    service_heads = heads(ours)
    new_revs = {ids(d)[0] for d in new.values()}
    result: dict[str, tuple[str, bytes]] = {}
    for path, data in sorted(new.items()):
        rev, downs = ids(data)
        text = data.decode()
        if rev is None:
            result[path] = (path, data)
            continue
        if all(d not in new_revs for d in downs) and (not downs or set(downs) <= base_revs | taken):
            down: str | tuple[str, ...] | None = (
                None
                if not service_heads
                else service_heads[0]
                if len(service_heads) == 1
                else tuple(service_heads)
            )
        else:
            mapped = tuple(renamed.get(d, d) for d in downs)
            down = mapped[0] if len(mapped) == 1 else mapped or None
        final_rev = renamed.get(rev, rev)
        text = _set(text, "down_revision", down)
        text = _docstring(text, "Revises", ", ".join(down) if isinstance(down, tuple) else down or "")
        if final_rev != rev:
            text = _set(text, "revision", final_rev)
            text = _docstring(text, "Revision ID", final_rev)
        final = path
        if final in ours or final_rev != rev:
            name = PurePosixPath(path).name
            stem = name[len(rev) :] if name.startswith(rev) else f"_{name}"
            final = f"{VERSIONS}{final_rev}{stem}"
        result[path] = (final, text.encode())
    return result
