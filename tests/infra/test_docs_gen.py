"""docs/spec.md and docs/gateway.md are generated from the code and committed in sync."""

from __future__ import annotations

from pathlib import Path

from infra.docs_gen import PAGES, gateway_reference, spec_reference, stale_pages
from infra.spec import ServiceManifest, StackConfig, load_spec

REPO = Path(__file__).resolve().parents[2]


def test_committed_pages_match_the_code() -> None:
    assert stale_pages(REPO) == [], "docs are stale: run `python -m infra.docs_gen` and commit the result"


def test_spec_reference_lists_every_key() -> None:
    text = spec_reference()
    for name, field in StackConfig.model_fields.items():
        assert f"`platform:{field.alias or name}`" in text
    for name, field in ServiceManifest.model_fields.items():
        assert f"| `{field.alias or name}` |" in text
    assert "### Autoscale" in text
    assert "`cpuPercent`" in text  # nested keys appear under their alias, as written in YAML


def test_gateway_page_lists_every_route_of_every_stack() -> None:
    text = gateway_reference(REPO)
    spec = load_spec("prod", REPO)
    for svc in spec.services:
        assert f"| `{svc.manifest.route}` | {svc.name} |" in text
    for stack in ("dev", "staging", "prod"):
        assert f"| {stack} | `{load_spec(stack, REPO).config.domain}` |" in text


def test_stale_page_is_detected(tmp_path: Path) -> None:
    for rel in PAGES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((REPO / rel).read_text())
    for sub in ("stacks", "services", "frontend"):
        (tmp_path / sub).symlink_to(REPO / sub)
    assert stale_pages(tmp_path) == []
    (tmp_path / "docs" / "gateway.md").write_text("# hand-edited\n")
    assert stale_pages(tmp_path) == ["docs/gateway.md"]
