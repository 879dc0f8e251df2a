"""`platform dev` serves what Kubernetes gets: same renderers, only addresses and paths differ."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.components.service import config_data, secret_files
from infra.local import dev_config as cfg
from infra.render.nginx import GatewayAddresses, render_nginx_conf
from infra.render.prometheus import ScrapeTargets, render_prometheus_config
from infra.render.rabbitmq import render_definitions
from infra.spec import PlatformSpec, load_spec

#: nginx directives whose arguments are addresses, ports, paths or process settings.
ADDRESS_DIRECTIVES = (
    "listen", "server", "ssl_certificate", "ssl_certificate_key", "pid", "error_log", "access_log",
    "proxy_cache_path", "user", "worker_processes", "set_real_ip_from", "real_ip_header", "real_ip_recursive",
    *(f"{name}_temp_path" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
)  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> PlatformSpec:
    return load_spec("dev")


@pytest.fixture(scope="module")
def ports(spec: PlatformSpec) -> dict[str, int]:
    return {key: 20000 + n for n, key in enumerate(cfg.port_keys(spec, web=True))}


def _normalise_nginx(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        word = stripped.split(" ", 1)[0]
        if word in ADDRESS_DIRECTIVES and not stripped.startswith("server {"):
            continue
        lines.append(
            re.sub(r"return 308 https://\$host(:[0-9]+)?\$request_uri;", "return 308 <https>;", line)
        )
    return lines


def test_gateway_config_differs_from_kubernetes_only_in_addresses(
    spec: PlatformSpec, ports: dict[str, int], tmp_path: Path
) -> None:
    local = cfg.nginx_conf(spec, cfg.Layout(tmp_path), ports)
    kubernetes = render_nginx_conf(spec, GatewayAddresses.for_kubernetes(spec))
    assert _normalise_nginx(local) == _normalise_nginx(kubernetes)
    assert local != kubernetes  # the addresses really differ
    for svc in (*spec.services, *spec.web_apps):
        assert f"server 127.0.0.1:{ports[cfg.service_port_key(svc.name)]} " in local


def test_prometheus_jobs_match_kubernetes_apart_from_discovery(
    spec: PlatformSpec, ports: dict[str, int], tmp_path: Path
) -> None:
    local = cfg.prometheus_config(spec, cfg.Layout(tmp_path), ports)
    kubernetes = render_prometheus_config(
        spec, ScrapeTargets.for_kubernetes(spec), "alertmanager:9093", ["r.yml"]
    )
    assert local["global"] == kubernetes["global"]
    k8s_jobs = {job["job_name"]: job for job in kubernetes["scrape_configs"]}
    discovery = {"kubernetes_sd_configs", "relabel_configs", "static_configs"}
    for job in local["scrape_configs"]:
        twin = k8s_jobs[job["job_name"]]
        assert {k: v for k, v in job.items() if k not in discovery} == {
            k: v for k, v in twin.items() if k not in discovery
        }
    services = next(j for j in local["scrape_configs"] if j["job_name"] == "services")
    assert {c["labels"]["service"] for c in services["static_configs"]} == {s.name for s in spec.services}


def test_alert_rules_are_the_kubernetes_rules(spec: PlatformSpec) -> None:
    from infra.render.alerts import render_alert_rules

    assert cfg.alert_rules(spec) == render_alert_rules(spec)


def test_rabbitmq_definitions_equal_kubernetes_apart_from_password_hashes(spec: PlatformSpec) -> None:
    secrets = {name: f"local-{name}" for name in cfg.secret_names(spec)}
    local = cfg.rabbitmq_definitions(spec, secrets)
    kubernetes = render_definitions(
        spec, {s.name: "other" for s in spec.services if s.manifest.needs.rabbitmq}
    )
    for doc in (local, kubernetes):
        for user in doc["users"]:
            assert user.pop("password_hash")
    assert local == kubernetes


def test_service_env_and_secret_files_are_the_kubernetes_ones(
    spec: PlatformSpec, ports: dict[str, int], tmp_path: Path
) -> None:
    secrets = {name: f"local-{name}" for name in cfg.secret_names(spec)}
    addresses = {
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "REDIS_HOST",
        "REDIS_PORT",
        "RABBITMQ_HOST",
        "RABBITMQ_PORT",
    }
    for svc in spec.services:
        local = cfg.service_env(spec, svc, ports, tmp_path)
        configmap = config_data(spec, svc)
        assert set(local) == set(configmap)
        assert {k for k in configmap if configmap[k] != local[k]} <= addresses | {
            "ENVIRONMENT", "JWT_ISSUER", "SECRETS_DIR", "FORWARDED_ALLOW_IPS",
        }  # fmt: skip
        files = cfg.service_secrets(spec, svc, secrets)
        assert set(files) == {key for keys in secret_files(svc).values() for key in keys}
        if svc.manifest.needs.postgres:
            assert files["POSTGRES_USER"] == svc.manifest.needs.postgres.database


# ---------------------------------------------------------------- the web app


def test_web_app_gets_its_port_and_the_internal_listener_only_when_it_runs(spec: PlatformSpec) -> None:
    assert spec.web is not None
    web_keys = {cfg.INTERNAL_PORT_KEY, cfg.service_port_key(spec.web.name)}
    assert web_keys <= set(cfg.port_keys(spec, web=True))
    assert not web_keys & set(cfg.port_keys(spec))


def test_gateway_routes_the_web_app_only_with_its_port(
    spec: PlatformSpec, ports: dict[str, int], tmp_path: Path
) -> None:
    assert spec.web is not None
    without = {k: v for k, v in ports.items() if k != cfg.service_port_key(spec.web.name)}
    without.pop(cfg.INTERNAL_PORT_KEY)
    addrs = cfg.gateway_addresses(spec, cfg.Layout(tmp_path), without)
    assert spec.web.name not in addrs.upstreams
    assert addrs.internal_port is None
    routed = cfg.gateway_addresses(spec, cfg.Layout(tmp_path), ports)
    assert routed.upstreams[spec.web.name] == f"127.0.0.1:{ports[cfg.service_port_key(spec.web.name)]}"
    assert routed.internal_port == ports[cfg.INTERNAL_PORT_KEY]


def test_web_env_points_server_side_calls_at_the_internal_listener(
    spec: PlatformSpec, ports: dict[str, int]
) -> None:
    assert spec.web is not None
    env = cfg.web_env(spec, ports)
    assert env["API_BASE_URL"] == f"http://127.0.0.1:{ports[cfg.INTERNAL_PORT_KEY]}"
    assert (env["HOSTNAME"], env["PORT"]) == ("127.0.0.1", str(ports[cfg.service_port_key("web")]))
    assert (env["NODE_ENV"], env["LOG_FORMAT"]) == ("production", "json")
    assert cfg.web_env(spec, ports, dev=True)["NODE_ENV"] == "development"


def test_web_command_needs_a_build_or_next_dev(tmp_path: Path) -> None:
    from infra.local.web_app import NEXT_CLI, STANDALONE_SERVER, web_argv

    app = tmp_path / "frontend"
    assert web_argv(tmp_path, app, reload=False) is None
    assert web_argv(tmp_path, app, reload=True) is None
    for path in (app / STANDALONE_SERVER, app / NEXT_CLI):
        path.parent.mkdir(parents=True)
        path.write_text("")
    production = web_argv(tmp_path, app, reload=False)
    assert production is not None
    assert production[1:] == [str(app / STANDALONE_SERVER)]
    dev = web_argv(tmp_path, app, reload=True)
    assert dev is not None
    assert dev[1:] == [str(app / NEXT_CLI), "dev", "--hostname", "127.0.0.1"]
