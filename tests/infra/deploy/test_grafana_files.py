"""Grafana's dashboards ConfigMap holds one file per dashboard under the renderer's own file name."""

from __future__ import annotations

import json

from infra.render.grafana import render_dashboards
from infra.spec import load_spec
from tests.infra.deploy.conftest import find


def test_dashboard_files_are_keyed_by_their_file_names(stacks) -> None:
    data = find(stacks["dev"].manifests, "ConfigMap", "grafana-dashboards")["data"]
    expected = render_dashboards(load_spec("dev"))
    assert sorted(data) == sorted(expected)  # service-<name>.json, not service-<name>.json.json
    assert all(key.count(".json") == 1 for key in data)
    assert json.loads(data["platform-overview.json"]) == expected["platform-overview.json"]
