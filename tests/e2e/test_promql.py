"""Every PromQL expression the platform renders (alert and recording rules, dashboards) parses in the
live Prometheus, and the live Prometheus loaded the rendered rule file."""

from __future__ import annotations

import httpx
import pytest

from infra.render.alerts import render_alert_rules
from infra.render.grafana import dashboard_queries
from infra.spec import load_spec

from .conftest import Platform

SPEC = load_spec("dev")
RULE_EXPRS = sorted({rule["expr"] for g in render_alert_rules(SPEC)["groups"] for rule in g["rules"]})
DASHBOARD_EXPRS = dashboard_queries(SPEC)


@pytest.mark.parametrize("expr", RULE_EXPRS + DASHBOARD_EXPRS)
def test_expression_is_accepted_by_the_live_prometheus(platform: Platform, expr: str) -> None:
    r = httpx.get(
        f"http://127.0.0.1:{platform.ports['prometheus']}/api/v1/query", params={"query": expr}, timeout=10
    )
    body = r.json()
    assert r.status_code == 200, body.get("error")
    assert body["status"] == "success"


def test_live_prometheus_loaded_every_rendered_rule(platform: Platform) -> None:
    r = httpx.get(f"http://127.0.0.1:{platform.ports['prometheus']}/api/v1/rules", timeout=10).json()
    loaded = {rule.get("name") for g in r["data"]["groups"] for rule in g["rules"]}
    rendered = {
        rule.get("alert") or rule.get("record")
        for g in render_alert_rules(SPEC)["groups"]
        for rule in g["rules"]
    }
    assert rendered == loaded
