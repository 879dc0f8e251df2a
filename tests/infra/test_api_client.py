"""The web app's generated API client is in sync with the services' apps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import api_client
from infra.errors import SpecError
from infra.scaffold.sandbox import copy_checkout
from infra.spec import REPO_ROOT, load_spec


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return api_client.fresh_files()


def test_committed_client_matches_the_apps(fresh: dict[str, str]) -> None:
    assert api_client.stale_files(REPO_ROOT, fresh) == [], "run: python -m infra.api_client"


def test_every_service_has_a_document_and_types(fresh: dict[str, str]) -> None:
    expected = {f"{s}.{ext}" for s in api_client.services() for ext in ("json", "d.ts")}
    assert set(fresh) == expected


def test_a_changed_api_makes_the_client_stale(fresh: dict[str, str], tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / api_client.OUT, tmp_path / api_client.OUT)
    types = tmp_path / api_client.OUT / "payment-svc.d.ts"
    types.write_text(types.read_text().replace('"/api/payments"', '"/api/payments-old"'))
    (tmp_path / api_client.OUT / "gone-svc.json").write_text("{}")
    assert api_client.stale_files(tmp_path, fresh) == [
        str(api_client.OUT / "gone-svc.json"),
        str(api_client.OUT / "payment-svc.d.ts"),
    ]


def test_the_web_app_names_the_services_its_client_covers(tmp_path: Path) -> None:
    """A newly scaffolded service leaves the client alone; a name the spec lacks is a spec error."""
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    covered = api_client.services(root)
    assert covered
    assert set(covered) <= {s.name for s in load_spec("dev", root).services}
    (root / "services" / "later-svc").mkdir()
    (root / "services" / "later-svc" / "service.yaml").write_text("name: later-svc\n")
    assert api_client.services(root) == covered
    manifest = root / "frontend" / "service.yaml"
    manifest.write_text(manifest.read_text().replace("apis: [", "apis: [nope-svc, "))
    (root / "services" / "later-svc" / "service.yaml").unlink()
    (root / "services" / "later-svc").rmdir()
    with pytest.raises(SpecError, match=r"apis: no service called 'nope-svc'"):
        load_spec("dev", root)
