"""Edit ``platform:services`` in stack files with ruamel.yaml round-trip (comments and order kept).

Pure text in, text out: the caller decides when and how the result reaches the disk.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra import spec
from infra.errors import SpecError

SERVICES_KEY = "platform:services"

#: Per-environment registration of a new service (mirrors how the existing services are sized).
DEFAULT_ENTRIES: dict[str, dict[str, Any]] = {
    "dev": {"replicas": 1},
    "staging": {"replicas": 2},
    "prod": {"replicas": 3, "autoscale": {"min": 3, "max": 6}},
}


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load_text(file: Path) -> str:
    """A stack file's text, after checking it parses (broken YAML -> SpecError naming the line)."""
    if not file.is_file():
        spec.read_yaml(file)  # raises the standard "file not found" SpecError
    text = file.read_text(encoding="utf-8")
    try:
        plain_yaml(text)
    except pyyaml.YAMLError:
        spec.read_yaml(file)  # raises the standard "broken YAML (line, column)" SpecError
        raise
    return text


def _load(file: Path, text: str) -> tuple[YAML, Any]:
    yaml = _yaml()
    try:
        data = yaml.load(text)
    except YAMLError as exc:  # read_yaml already caught what PyYAML rejects; ruamel is stricter
        raise SpecError(f"{file}: broken YAML: {exc}", hint="fix the YAML syntax", file=file) from exc
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise SpecError(
            f"{file}: config: expected a mapping", hint="see docs/spec.md", file=file, field="config"
        )
    return yaml, data


def _dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


@lru_cache(maxsize=32)
def plain_yaml(text: str) -> Any:
    """Plain data of a stack text (libyaml when present: ruamel's round-trip parse is much slower)."""
    loader = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)  # a safe loader either way
    return pyyaml.load(text, Loader=loader)  # noqa: S506


def _config(file: Path, text: str) -> dict[str, Any]:
    data = plain_yaml(text)
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise SpecError(
            f"{file}: config: expected a mapping", hint="see docs/spec.md", file=file, field="config"
        )
    return data["config"]


def registered(file: Path, text: str) -> dict[str, Any]:
    """Service name -> its entry under ``platform:services`` (plain dicts)."""
    services = _config(file, text).get(SERVICES_KEY) or {}
    if not isinstance(services, dict):
        raise SpecError(f"{file}: {SERVICES_KEY}: expected a mapping", hint="see docs/spec.md", file=file)
    return {str(k): v for k, v in services.items()}


def environment(file: Path, text: str) -> str:
    return str(_config(file, text).get("platform:environment", ""))


def default_entry(file: Path, text: str, entries: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The sizing a new service gets in this stack: by the stack's ``platform:environment``.

    *entries* are the template's ``stack_entries``; without them, :data:`DEFAULT_ENTRIES`.
    """
    return (entries or DEFAULT_ENTRIES).get(environment(file, text), {"replicas": 1})


def merge_entry(
    file: Path, text: str, name: str, base: dict[str, Any], theirs: dict[str, Any]
) -> tuple[str, list[str]]:
    """*text* with the template's change base -> theirs merged into ``name``'s entry, key by key.

    Returns (new text, clashing keys); on a clash the text is unchanged (a stack file stays valid YAML:
    no conflict markers in it).
    """
    from infra.scaffold.merge import merge_mapping

    yaml, data = _load(file, text)
    services = data["config"].get(SERVICES_KEY)
    ours = services.get(name) if isinstance(services, dict) else None
    if not isinstance(ours, dict):
        return text, []
    clashes = merge_mapping(base, ours, _flow(theirs))
    return (text, clashes) if clashes else (_dump(yaml, data), [])


def add_service(file: Path, text: str, name: str, entry: dict[str, Any]) -> str:
    """*text* with ``name: {entry}`` appended to ``platform:services`` (flow style, like its siblings)."""
    yaml, data = _load(file, text)
    config = data["config"]
    services = config.get(SERVICES_KEY)
    if services is None:
        services = CommentedMap()
        config[SERVICES_KEY] = services
    value = _flow(entry)
    services[name] = value
    return _dump(yaml, data)


def remove_service(file: Path, text: str, name: str) -> str:
    """*text* without ``name`` under ``platform:services``."""
    yaml, data = _load(file, text)
    services = data["config"].get(SERVICES_KEY)
    if isinstance(services, dict) and name in services:
        del services[name]
    return _dump(yaml, data)


def _flow(entry: dict[str, Any]) -> CommentedMap:
    value = CommentedMap()
    for key, item in entry.items():
        value[key] = _flow(item) if isinstance(item, dict) else item
    value.fa.set_flow_style()
    return value
