"""Render a template's files in memory (``StrictUndefined``): relative path -> bytes. Writes nothing."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from infra.errors import SpecError
from infra.scaffold.template import Template


def render_files(template: Template, answers: dict[str, Any]) -> dict[str, bytes]:
    """Every output file of *template* for *answers*, keyed by POSIX path relative to the service folder.

    Path segments are Jinja too; a segment that renders empty drops the file (copier's convention for
    conditional files and folders: ``{% if x %}name.py{% endif %}.jinja``). Files ending in the
    template suffix are rendered and lose the suffix; other files are copied verbatim. A rendered path
    that escapes the folder is an error.
    """
    base = template.files_dir
    suffix = template.spec.templates_suffix
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for filename in sorted(filenames):
            source = Path(dirpath) / filename
            if source.is_symlink():
                raise SpecError(f"{source}: symlinks are not allowed in templates", hint="copy the file")
            rel = source.relative_to(base).as_posix()
            is_template = rel.endswith(suffix)
            target = _render_path(template, rel.removesuffix(suffix) if is_template else rel, answers)
            if target is None:
                continue
            files[target] = (
                _render_text(template, source, answers).encode() if is_template else source.read_bytes()
            )
    return files


def _render_path(template: Template, rel: str, answers: dict[str, Any]) -> str | None:
    parts: list[str] = []
    for segment in rel.split("/"):
        rendered = (
            _render_string(template, segment, answers, where=rel).strip() if "{" in segment else segment
        )
        if not rendered:
            return None
        if rendered in {".", ".."} or "/" in rendered or "\\" in rendered:
            raise SpecError(
                f"template path '{rel}' renders to '{rendered}', which escapes the service folder",
                hint="fix the answers or the template's file names",
            )
        parts.append(rendered)
    path = PurePosixPath(*parts)
    if path.is_absolute():
        raise SpecError(f"template path '{rel}' is absolute", hint="fix the template's file names")
    return path.as_posix()


def _render_string(template: Template, source: str, answers: dict[str, Any], where: str) -> str:
    try:
        return template.env.from_string(source).render(**answers)
    except jinja2.TemplateError as exc:
        raise SpecError(f"{template.name}: {where}: {exc}", hint="fix the template") from exc


def _render_text(template: Template, source: Path, answers: dict[str, Any]) -> str:
    rel = source.relative_to(template.folder).as_posix()
    try:
        text = template.env.get_template(rel).render(**answers)
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(
            f"{template.name}/{rel}:{exc.lineno}: {exc.message}", hint="fix the template"
        ) from exc
    except jinja2.TemplateError as exc:
        raise SpecError(f"{template.name}/{rel}: {exc}", hint="fix the template or its questions") from exc
    return text
