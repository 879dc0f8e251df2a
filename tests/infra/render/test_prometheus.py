"""prometheus.yml, rules and alertmanager.yml: accepted by promtool/amtool; every alert proven by promtool."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.errors import UsageError
from infra.render.alerts import alert_names, render_alert_rules
from infra.render.grafana import dashboard_queries
from infra.render.prometheus import (
    PLATFORM_JOBS,
    ScrapeTargets,
    render_alertmanager_config,
    render_prometheus_config,
)
from infra.spec import STACKS, PlatformSpec, load_spec

from .conftest import require_tool
from .promtool_cases import cases

THRESHOLD_ALERTS = (
    "ServiceHighErrorRatio",
    "ServiceHighLatencyP99",
    "ServiceErrorBudgetBurnFast",
    "ServiceErrorBudgetBurnSlow",
    "GatewayHighErrorRatio",
)
DOCS = Path(__file__).resolve().parents[3] / "docs" / "runbooks.md"
# Meta labels the endpoints role provides (Prometheus docs, kubernetes_sd_config "endpoints").
ENDPOINTS_META = (
    "__meta_kubernetes_namespace",
    "__meta_kubernetes_pod_name",
    "__meta_kubernetes_endpoint_port_name",
    "__meta_kubernetes_service_label_",
)


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool(tool), *args], capture_output=True, text=True, timeout=60, check=False
    )


def dump(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    return path


def local_targets(spec: PlatformSpec) -> ScrapeTargets:
    return ScrapeTargets.for_local(
        spec,
        {s.name: 18000 + i for i, s in enumerate(spec.services)},
        {job: f"127.0.0.1:{19000 + i}" for i, job in enumerate(PLATFORM_JOBS)},
    )


def test_local_prometheus_config_passes_promtool(spec: PlatformSpec, tmp_path: Path) -> None:
    dump(tmp_path / "rules.yml", render_alert_rules(spec))
    config = render_prometheus_config(spec, local_targets(spec), ["http://127.0.0.1:9093"], ["rules.yml"])
    result = run("promtool", "check", "config", str(dump(tmp_path / "prometheus.yml", config)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_prometheus_config_passes_promtool(spec: PlatformSpec, tmp_path: Path) -> None:
    # Debian's Prometheus is built without Kubernetes SD: swap each kubernetes_sd_configs block for a
    # file_sd_configs one so promtool still validates every relabel rule, path and param for real.
    config = render_prometheus_config(spec, ScrapeTargets.for_kubernetes(spec), "alertmanager:9093")
    checked = copy.deepcopy(config)
    (tmp_path / "targets.json").write_text("[]")
    for job in checked["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    result = run("promtool", "check", "config", str(dump(tmp_path / "prometheus.yml", checked)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_jobs_discover_endpoints_in_the_stack_namespace(spec: PlatformSpec) -> None:
    config = render_prometheus_config(spec, ScrapeTargets.for_kubernetes(spec))
    discovered = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    assert {j["job_name"] for j in discovered} == {"services", *PLATFORM_JOBS}
    for job in discovered:
        # Promtail (the gateway job's access-log counters) runs in the logs namespace.
        namespace = spec.config.logs_namespace if job["job_name"] == "gateway" else spec.config.namespace
        assert job["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": [namespace]}}]
        sources = [s for r in job["relabel_configs"] for s in r.get("source_labels", [])]
        assert all(s.startswith(ENDPOINTS_META) for s in sources), sources


def test_services_job_keeps_exactly_the_spec_services(spec: PlatformSpec) -> None:
    config = render_prometheus_config(spec, ScrapeTargets.for_kubernetes(spec))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "services")
    keep = next(r for r in job["relabel_configs"] if r["source_labels"][0].endswith("app_kubernetes_io_name"))
    assert sorted(keep["regex"].split("|")) == sorted(s.name for s in spec.services)


def test_alert_rules_pass_promtool(spec: PlatformSpec, tmp_path: Path) -> None:
    result = run("promtool", "check", "rules", str(dump(tmp_path / "rules.yml", render_alert_rules(spec))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_service_and_runbook_section(spec: PlatformSpec) -> None:
    headings = {line[3:].strip().lower() for line in DOCS.read_text().splitlines() if line.startswith("## ")}
    for group in render_alert_rules(spec)["groups"]:
        for rule in (r for r in group["rules"] if "alert" in r):
            assert rule["labels"]["severity"] in {"critical", "warning"}
            # label_replace alerts take `service` from the series (proven by the promtool cases).
            assert "service" in rule["labels"] or "label_replace" in rule["expr"]
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert anchor in headings


def test_every_alert_has_promtool_cases(spec: PlatformSpec) -> None:
    assert sorted(cases(spec)) == alert_names(spec)


@pytest.mark.parametrize("alert", alert_names(load_spec("prod")))
def test_alert_fires_on_bad_series_and_not_on_good(specs, alert: str, tmp_path: Path) -> None:
    spec = specs["prod"]
    dump(tmp_path / "rules.yml", render_alert_rules(spec))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases(spec)[alert]}
    result = run("promtool", "test", "rules", str(dump(tmp_path / "test.yml", tests)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stack", [s for s in STACKS if s != "prod"])
def test_all_alerts_fire_with_this_stacks_thresholds(specs, stack: str, tmp_path: Path) -> None:
    # Only the alerts whose thresholds come from the stack, in one promtool run (prod runs all above).
    spec = specs[stack]
    dump(tmp_path / "rules.yml", render_alert_rules(spec))
    tests = [case for name in THRESHOLD_ALERTS for case in cases(spec)[name]]
    config = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    result = run("promtool", "test", "rules", str(dump(tmp_path / "test.yml", config)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_case_fails_when_the_threshold_is_not_crossed(specs, tmp_path: Path) -> None:
    # Guard against vacuous cases: expecting the alert on the *good* input must fail.
    spec = specs["prod"]
    dump(tmp_path / "rules.yml", render_alert_rules(spec))
    fire, good = cases(spec)["ServiceHighLatencyP99"]
    good["alert_rule_test"] = fire["alert_rule_test"]
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [good]}
    assert run("promtool", "test", "rules", str(dump(tmp_path / "t.yml", tests))).returncode != 0


def test_dashboard_queries_are_valid_promql(spec: PlatformSpec, tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(dashboard_queries(spec))
                ],
            }
        ]
    }
    result = run("promtool", "check", "rules", str(dump(tmp_path / "q.yml", rules)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool(spec: PlatformSpec, tmp_path: Path) -> None:
    config = render_alertmanager_config(
        spec, webhook_url="http://relay.example:9000/hook", credentials_file="/etc/alertmanager/token"
    )
    result = run("amtool", "check-config", str(dump(tmp_path / "am.yml", config)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_by_severity_and_inhibits_warnings(specs) -> None:
    config = render_alertmanager_config(
        specs["prod"],
        webhook_url="https://h.example/a",
        credentials_file="/t",
        critical_webhook_url="https://p/b",
    )
    routes = {tuple(r["matchers"]): r["receiver"] for r in config["route"]["routes"]}
    assert routes == {('severity="critical"',): "pager", ('severity="warning"',): "tickets"}
    assert config["inhibit_rules"][0]["source_matchers"] == ['severity="critical"']
    assert config["inhibit_rules"][0]["equal"] == ["service"]


@pytest.mark.parametrize("url", ["https://user:secret@h.example/x", "https://h.example/x?token=s3cret"])
def test_alertmanager_refuses_urls_with_credentials(specs, url: str) -> None:
    with pytest.raises(UsageError, match="credentials"):
        render_alertmanager_config(specs["dev"], webhook_url=url, credentials_file="/t")


def _with_web_metrics(spec: PlatformSpec) -> PlatformSpec:
    assert spec.web is not None
    manifest = spec.web.manifest.model_copy(update={"metrics": "/metrics"})
    web = spec.web.model_copy(update={"manifest": manifest})
    return spec.model_copy(update={"web_apps": (web,)})


def test_web_app_metrics_are_scraped_only_when_it_exposes_them(specs) -> None:
    spec = specs["dev"]
    plain = render_prometheus_config(spec, ScrapeTargets.for_kubernetes(spec), "alertmanager:9093")
    assert not any(job["job_name"].startswith("web") for job in plain["scrape_configs"])
    exposed = _with_web_metrics(spec)
    config = render_prometheus_config(exposed, ScrapeTargets.for_kubernetes(exposed), "alertmanager:9093")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "web-web"]
    assert job["metrics_path"] == "/metrics"
    keeps = {r["source_labels"][0]: r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    assert keeps["__meta_kubernetes_service_label_app_kubernetes_io_component"] == "web"
    assert keeps["__meta_kubernetes_service_label_app_kubernetes_io_name"] == "web"


def test_local_web_app_scrape_passes_promtool(specs, tmp_path: Path) -> None:
    spec = _with_web_metrics(specs["dev"])
    targets = ScrapeTargets.for_local(spec, {"web": 18500}, {})
    config = render_prometheus_config(spec, targets, ["http://127.0.0.1:9093"], [])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "web-web"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:18500"], "labels": {"service": "web"}}]
    result = run("promtool", "check", "config", str(dump(tmp_path / "prometheus.yml", config)))
    assert result.returncode == 0, result.stdout + result.stderr
