"""The web app's generated API client is in sync with the services' apps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import api_client
from infra.spec import REPO_ROOT


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
