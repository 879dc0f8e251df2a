"""Every invalid spec fails `platform render` with exit 2, the file, the field, a hint - no traceback.

Each case breaks one file in a temp copy of the repo's spec files and runs the real CLI there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLATFORM = str(Path(sys.executable).parent / "platform")
Data = dict[str, Any]


def spec_copy(dest: Path) -> Path:
    """Pulumi.yaml, the stack files and every service.yaml - all the spec reads."""
    shutil.copy(REPO / "Pulumi.yaml", dest / "Pulumi.yaml")
    shutil.copytree(REPO / "stacks", dest / "stacks")
    for manifest in (REPO / "services").glob("*/service.yaml"):
        target = dest / "services" / manifest.parent.name
        target.mkdir(parents=True)
        shutil.copy(manifest, target / "service.yaml")
    (dest / "frontend").mkdir()
    shutil.copy(REPO / "frontend" / "service.yaml", dest / "frontend" / "service.yaml")
    return dest


def edit(path: Path, change: Callable[[Data], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def svc(name: str) -> str:
    return f"services/{name}/service.yaml"


DEV = "stacks/Pulumi.dev.yaml"


def _stack_services(change: Callable[[Data], None]) -> Callable[[Data], None]:
    return lambda d: change(d["config"]["platform:services"])


# case -> (file to break, how, field the message must name, fragment of the message)
CASES: dict[str, tuple[str, Callable[[Data], None], str, str]] = {
    "duplicate route": (svc("payment-svc"), lambda d: d.update(route="/api/auth"), "route", "duplicates"),
    "overlapping route": (svc("chat-svc"), lambda d: d.update(route="/api/auth/chat"), "route", "overlaps"),
    "consumed event nobody publishes": (
        svc("chat-svc"),
        lambda d: d["needs"]["rabbitmq"].update(consumes=["listing.archived"]),
        "needs.rabbitmq.consumes",
        "no service publishes 'listing.archived'",
    ),
    "stack entry for unknown service": (
        DEV,
        _stack_services(lambda s: s.update({"ghost-svc": {"replicas": 1}})),
        "platform:services.ghost-svc",
        "no service called 'ghost-svc'",
    ),
    "uppercase name": (svc("auth-svc"), lambda d: d.update(name="Auth-Svc"), "name", "DNS-1035"),
    "too-long name": (svc("auth-svc"), lambda d: d.update(name="a" * 50), "name", "50 characters"),
    "reserved name": (svc("auth-svc"), lambda d: d.update(name="redis"), "name", "reserved"),
    "unknown key in service.yaml": (
        svc("auth-svc"),
        lambda d: d.update(replicas=2),
        "replicas",
        "not permitted",
    ),
    "unknown key in stack config": (
        DEV,
        lambda d: d["config"].update({"platform:gatewy": {"replicas": 2}}),
        "platform:gatewy",
        "not permitted",
    ),
    "bad cpu quantity": (
        svc("auth-svc"),
        lambda d: d["resources"]["requests"].update(cpu="100 millicores"),
        "resources.requests.cpu",
        "pattern",
    ),
    "bad memory quantity in stack": (
        DEV,
        _stack_services(
            lambda s: s.update({"auth-svc": {"resources": {"requests": {"cpu": "1", "memory": "512MB"}}}})
        ),
        "platform:services.auth-svc.resources",
        "pattern",
    ),
    "autoscale max below min": (
        DEV,
        _stack_services(lambda s: s.update({"auth-svc": {"autoscale": {"min": 3, "max": 2}}})),
        "platform:services.auth-svc.autoscale",
        "max (2) is below min (3)",
    ),
    "route without leading slash": (
        svc("auth-svc"),
        lambda d: d.update(route="api/auth"),
        "route",
        "not a route",
    ),
    "name does not match folder": (
        svc("auth-svc"),
        lambda d: d.update(name="auth-service"),
        "name",
        "does not match its folder 'auth-svc'",
    ),
    "duplicate database": (
        svc("chat-svc"),
        lambda d: d["needs"]["postgres"].update(database="auth"),
        "needs.postgres.database",
        "already owned by auth-svc",
    ),
    "bad event name": (
        svc("auth-svc"),
        lambda d: d["needs"]["rabbitmq"].update(publishes=["UserRegistered"]),
        "needs.rabbitmq.publishes",
        "not an event name",
    ),
}


def run_render(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, "render", "--stack", "dev"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], file: str, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    first, *rest = proc.stderr.splitlines()
    assert first.startswith(f"error: {file}: "), first
    for fragment in fragments:
        assert fragment in first, first
    assert any(line.startswith("hint: ") and len(line) > 10 for line in rest), proc.stderr
    return first


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_fails_with_file_field_and_hint(tmp_path: Path, case: str) -> None:
    file, change, field, fragment = CASES[case]
    root = spec_copy(tmp_path)
    edit(root / file, change)
    assert_user_error(run_render(root), file, f": {field}", fragment)


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    path = root / svc("auth-svc")
    path.write_text(path.read_text().replace("port: 8000", "port: [8000"))
    assert_user_error(run_render(root), svc("auth-svc"), "broken YAML", "line ")


def test_pristine_copy_passes_spec_validation(tmp_path: Path) -> None:
    """Control: the unbroken copy gets past spec loading (so each case fails for its own reason)."""
    from infra.spec import load_spec

    spec = load_spec("dev", spec_copy(tmp_path))
    assert {s.name for s in spec.services} == {p.parent.name for p in REPO.glob("services/*/service.yaml")}


def _rename(data: Data, old: str, new: str) -> None:
    data[new] = data.pop(old)


@pytest.mark.parametrize(
    ("file", "change", "field", "suggestion"),
    [
        (
            DEV,
            lambda d: _rename(d["config"], "platform:domain", "platform:domian"),
            "platform:domian",
            "platform:domain",
        ),
        (
            DEV,
            lambda d: _rename(d["config"]["platform:gateway"], "rateLimit", "rateLimt"),
            "platform:gateway.rateLimt",
            "rateLimit",
        ),
        (svc("auth-svc"), lambda d: _rename(d, "route", "rout"), "rout", "route"),
    ],
    ids=["top-level stack key", "nested stack key", "manifest key"],
)
def test_a_misspelt_key_suggests_the_right_one(
    tmp_path: Path, file: str, change: Callable[[Data], None], field: str, suggestion: str
) -> None:
    root = spec_copy(tmp_path)
    edit(root / file, change)
    proc = run_render(root)
    assert_user_error(proc, file, f": {field}: ")
    assert f"hint: did you mean {suggestion}? (see docs/spec.md)" in proc.stderr.splitlines()
