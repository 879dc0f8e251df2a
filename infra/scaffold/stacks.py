"""Edit ``platform:services`` in stack files with ruamel.yaml round-trip (comments and order kept).

Pure text in, text out: the caller decides when and how the result reaches the disk.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra import spec
from infra.errors import SpecError
from infra.quantities import cpu, memory

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
    _add(data["config"], name, entry)
    return _dump(yaml, data)


def _add(config: Any, name: str, entry: dict[str, Any]) -> None:
    services = config.get(SERVICES_KEY)
    if services is None:
        services = CommentedMap()
        config[SERVICES_KEY] = services
    services[name] = _flow(entry)


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


QUOTA_KEY = "platform:quota"
_GI = 2**30


@dataclass(frozen=True)
class QuotaNeed:
    """What one service adds to a stack's rollout peak (``platform check`` rule LC-QUOTA), rounded up
    to whole cores and whole Gi: every replica (or its autoscale maximum) plus one surge pod, plus its
    migration Job when it owns a database - each pod one ``app`` container at the service's limits."""

    cpu: int
    memory_gi: int
    pods: int

    @classmethod
    def of(cls, manifest: Any, entry: dict[str, Any]) -> QuotaNeed:
        autoscale = entry.get("autoscale") or {}
        replicas = int(autoscale.get("max") or entry.get("replicas") or 1)
        pods = replicas + 1 + (1 if manifest.needs.postgres else 0)
        limits = manifest.resources.limits
        return cls(
            cpu=math.ceil(cpu(limits.cpu) * pods),
            memory_gi=math.ceil(Decimal(memory(limits.memory) * pods) / _GI),
            pods=pods,
        )


def _quantity_gi(value: int) -> str:
    return f"{value // _GI}Gi" if value % _GI == 0 else f"{value // 2**20}Mi"


def change_quota(file: Path, text: str, need: QuotaNeed, sign: int) -> tuple[str, dict[str, str]]:
    """*text* with ``platform:quota`` raised (*sign* 1) or lowered (-1) by *need*; and the new quota."""
    yaml, data = _load(file, text)
    quota = _change_quota(data["config"], need, sign)
    return _dump(yaml, data), quota


def register(
    file: Path, text: str, name: str, entry: dict[str, Any], need: QuotaNeed
) -> tuple[str, dict[str, str]]:
    """:func:`add_service` and :func:`change_quota` (+1) in one round trip (ruamel parses slowly)."""
    yaml, data = _load(file, text)
    _add(data["config"], name, entry)
    quota = _change_quota(data["config"], need, +1)
    return _dump(yaml, data), quota


def unregister(file: Path, text: str, name: str, need: QuotaNeed | None) -> tuple[str, dict[str, str] | None]:
    """:func:`remove_service`, and give *need* back to the quota, in one round trip."""
    yaml, data = _load(file, text)
    services = data["config"].get(SERVICES_KEY)
    if isinstance(services, dict) and name in services:
        del services[name]
    quota = _change_quota(data["config"], need, -1) if need is not None else None
    return _dump(yaml, data), quota


def _change_quota(config: Any, need: QuotaNeed, sign: int) -> dict[str, str]:
    """Raise (*sign* 1) or lower (-1) ``platform:quota`` in a loaded stack config by *need*.

    A stack without ``platform:quota`` gets one (the defaults plus *need*); the style of the existing
    values (a quoted cpu, a flow mapping) is kept.
    """
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    defaults = spec.Quota()
    quota = config.get(QUOTA_KEY)
    if not isinstance(quota, dict):
        quota = _flow({"cpu": DoubleQuotedScalarString(defaults.cpu), "memory": defaults.memory})
        quota["pods"] = defaults.pods
        config[QUOTA_KEY] = quota
    old_cpu = cpu(quota.get("cpu", defaults.cpu))
    new_cpu = format((old_cpu + sign * need.cpu).normalize(), "f")
    quota["cpu"] = DoubleQuotedScalarString(new_cpu) if isinstance(quota.get("cpu"), str) else new_cpu
    quota["memory"] = _quantity_gi(memory(quota.get("memory", defaults.memory)) + sign * need.memory_gi * _GI)
    quota["pods"] = int(quota.get("pods", defaults.pods)) + sign * need.pods
    return {k: str(quota[k]) for k in ("cpu", "memory", "pods")}
