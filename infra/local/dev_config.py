"""Pure pieces of `platform dev`: port names, secret names, service environments, rendered configs.

Everything here comes from the same renderers as the Kubernetes stacks; only addresses differ
(``tests/local/test_runner_config.py`` proves it by rendering both and comparing).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.environment import Endpoints, service_environment
from infra.render.alertmanager import render_alertmanager_config
from infra.render.alerts import render_alert_rules
from infra.render.nginx import GatewayAddresses, GatewayPorts, render_nginx_conf
from infra.render.prometheus import ScrapeTargets, render_prometheus_config
from infra.render.rabbitmq import render_definitions
from infra.render.redis import ADMIN_USER, EXPORTER_USER, redis_users
from infra.spec import PlatformSpec, ServiceSpec
from infra.token_keys import public_keys_document

HOST = "127.0.0.1"
#: Fixed-port names (``--<name>-port`` on the CLI; ``service:<svc>`` for each service).
PLATFORM_PORTS = (
    "gateway_https",
    "gateway_http",
    "prometheus",
    "alertmanager",
    "postgres",
    "redis",
    "rabbitmq",
    "rabbitmq_dist",
    "rabbitmq_epmd",
    "rabbitmq_prometheus",
)
#: Alertmanager needs a receiver; locally nothing listens on the discard port (alerts are only shown).
LOCAL_WEBHOOK = "http://127.0.0.1:9/alerts"


def service_port_key(name: str) -> str:
    """Port-map key of a service."""
    return f"service:{name}"


#: The gateway's internal API listener (the web app's ``API_BASE_URL``), when the web app runs.
INTERNAL_PORT_KEY = "gateway_internal"


def port_keys(spec: PlatformSpec, *, web: bool = False) -> list[str]:
    """Every port the local platform needs (with *web*, the web app's and the internal listener's)."""
    keys = [*PLATFORM_PORTS, *(service_port_key(s.name) for s in spec.services)]
    if web and spec.web is not None:
        keys += [INTERNAL_PORT_KEY, service_port_key(spec.web.name)]
    return keys


def secret_names(spec: PlatformSpec) -> list[str]:
    """Every generated local secret: superusers/admins, one per service and backend, the token key
    (``jwt``: the signing key's secret), each service's own keys (``key:<svc>:<NAME>``)."""
    names = ["jwt", "postgres", "rabbitmq:admin"]
    names += [f"redis:{user}" for user in redis_users(spec)]
    for svc in spec.services:
        names += [f"key:{svc.name}:{key}" for key in svc.manifest.secrets]
        needs = svc.manifest.needs
        if needs.postgres:
            names.append(f"postgres:{svc.name}")
        if needs.rabbitmq:
            names.append(f"rabbitmq:{svc.name}")
    return names


def redis_passwords(secrets: Mapping[str, str]) -> dict[str, str]:
    """ACL user -> password."""
    return {k.split(":", 1)[1]: v for k, v in secrets.items() if k.startswith("redis:")}


def rabbitmq_passwords(spec: PlatformSpec, secrets: Mapping[str, str]) -> dict[str, str]:
    """Service user -> password (the admin is added by the node itself)."""
    return {s.name: secrets[f"rabbitmq:{s.name}"] for s in spec.services if s.manifest.needs.rabbitmq}


def jwt_issuer(https_port: int) -> str:
    """The issuer every service agrees on: the auth route behind the local gateway."""
    return f"https://localhost:{https_port}/api/auth"


def service_env(
    spec: PlatformSpec,
    svc: ServiceSpec,
    ports: Mapping[str, int],
    secrets_dir: Path | str,
    *,
    log_level: str = "INFO",
) -> dict[str, str]:
    """The environment contract (:mod:`infra.environment`) for *svc* on this machine.

    Credentials are not in it: like the pod, the service reads them as files from ``SECRETS_DIR``
    (see :func:`service_secrets`), so they never show up in ``/proc/<pid>/environ``.
    """
    where = Endpoints(
        environment="local",
        postgres=(HOST, ports["postgres"]),
        redis=(HOST, ports["redis"]),
        rabbitmq=(HOST, ports["rabbitmq"]),
        jwt_issuer=jwt_issuer(ports["gateway_https"]),
        forwarded_allow_ips=HOST,  # the local gateway
        secrets_dir=str(secrets_dir),
    )
    return service_environment(spec, svc, where, log_level=log_level)


def service_secrets(spec: PlatformSpec, svc: ServiceSpec, secrets: Mapping[str, str]) -> dict[str, str]:
    """The service's credential files (variable name -> value), as the Kubernetes Secrets hold them:
    every service the public token keys, the issuer also the signing key, each its own keys."""
    needs = svc.manifest.needs
    files = {"JWT_PUBLIC_KEYS": public_keys_document([secrets["jwt"]])}
    if svc.manifest.issues_tokens:
        files["JWT_SIGNING_KEY"] = secrets["jwt"]
    files |= {key: secrets[f"key:{svc.name}:{key}"] for key in svc.manifest.secrets}
    if needs.postgres:
        files |= {
            "POSTGRES_USER": needs.postgres.database,
            "POSTGRES_PASSWORD": secrets[f"postgres:{svc.name}"],
        }
    if needs.redis:
        files |= {"REDIS_USER": svc.name, "REDIS_PASSWORD": secrets[f"redis:{svc.name}"]}
    if needs.rabbitmq:
        files |= {"RABBITMQ_USER": svc.name, "RABBITMQ_PASSWORD": secrets[f"rabbitmq:{svc.name}"]}
    return files


def write_service_secrets(directory: Path, files: Mapping[str, str]) -> None:
    """Write credential files (directory 0700, files 0600), replacing what was there."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for name, value in files.items():
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)


@dataclass(frozen=True)
class Layout:
    """Where `platform dev` keeps things under its state directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def prometheus(self) -> Path:
        return self.data / "prometheus"

    @property
    def alertmanager(self) -> Path:
        return self.data / "alertmanager"

    def secrets(self, service: str) -> Path:
        return self.root / "secrets" / service

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def gateway_addresses(
    spec: PlatformSpec, layout: Layout, ports: Mapping[str, int], *, web_dev: bool = False
) -> GatewayAddresses:
    """The local gateway: :meth:`GatewayAddresses.for_local` with logs in the logs folder; the web
    app is routed (and the internal API listener opened) when *ports* has its port."""
    apps = [*spec.services, *spec.web_apps]
    addrs = GatewayAddresses.for_local(
        spec,
        layout.gateway,
        GatewayPorts(http=ports["gateway_http"], https=ports["gateway_https"]),
        {a.name: ports[service_port_key(a.name)] for a in apps if service_port_key(a.name) in ports},
        host=HOST,
        user="root" if os.geteuid() == 0 else None,
        tls_cert=layout.tls / "tls.crt",
        tls_key=layout.tls / "tls.key",
        internal_port=ports.get(INTERNAL_PORT_KEY),
        web_dev=web_dev,
    )
    return dataclasses.replace(
        addrs, access_log=str(layout.log("gateway-access")), error_log=str(layout.log("gateway"))
    )


def nginx_conf(spec: PlatformSpec, layout: Layout, ports: Mapping[str, int], *, web_dev: bool = False) -> str:
    """The gateway's nginx.conf for this machine."""
    return render_nginx_conf(spec, gateway_addresses(spec, layout, ports, web_dev=web_dev))


def web_env(spec: PlatformSpec, ports: Mapping[str, int], *, dev: bool = False) -> dict[str, str]:
    """The web app's environment on this machine: loopback, the internal API listener."""
    from infra.environment import web_environment

    assert spec.web is not None
    env = web_environment(
        spec,
        spec.web,
        environment="local",
        api_base_url=f"http://{HOST}:{ports[INTERNAL_PORT_KEY]}",
        host=HOST,
    )
    env["PORT"] = str(ports[service_port_key(spec.web.name)])
    if dev:
        env["NODE_ENV"] = "development"
    return env


def scrape_targets(spec: PlatformSpec, ports: Mapping[str, int]) -> ScrapeTargets:
    """Static targets: every service, the broker's Prometheus plugin, Prometheus and Alertmanager."""
    rabbit = f"{HOST}:{ports['rabbitmq_prometheus']}"
    return ScrapeTargets.for_local(
        spec,
        {
            a.name: ports[service_port_key(a.name)]
            for a in (*spec.services, *spec.web_apps)
            if service_port_key(a.name) in ports
        },
        {
            "rabbitmq": rabbit,
            "rabbitmq-queues": rabbit,
            "prometheus": f"{HOST}:{ports['prometheus']}",
            "alertmanager": f"{HOST}:{ports['alertmanager']}",
        },
        host=HOST,
    )


def prometheus_config(
    spec: PlatformSpec, layout: Layout, ports: Mapping[str, int], scrape_interval: str | None = None
) -> dict[str, Any]:
    """prometheus.yml for this machine (*scrape_interval* overrides the stack's, e.g. for tests)."""
    config = render_prometheus_config(
        spec,
        scrape_targets(spec, ports),
        alertmanager_urls=[f"{HOST}:{ports['alertmanager']}"],
        rule_files=[str(layout.prometheus / "rules.yml")],
    )
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    return config


def alert_rules(spec: PlatformSpec) -> dict[str, Any]:
    """The rule file, exactly as Kubernetes gets it."""
    return render_alert_rules(spec)


def alertmanager_config(spec: PlatformSpec, layout: Layout) -> dict[str, Any]:
    """alertmanager.yml with a local webhook and an (empty) credentials file."""
    return render_alertmanager_config(
        spec, webhook_url=LOCAL_WEBHOOK, credentials_file=str(layout.alertmanager / "webhook-token")
    )


def rabbitmq_definitions(spec: PlatformSpec, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The broker topology and service users, exactly as Kubernetes gets it."""
    return render_definitions(spec, rabbitmq_passwords(spec, secrets))


__all__ = [
    "ADMIN_USER",
    "EXPORTER_USER",
    "Layout",
    "alert_rules",
    "alertmanager_config",
    "gateway_addresses",
    "nginx_conf",
    "port_keys",
    "prometheus_config",
    "rabbitmq_definitions",
    "secret_names",
    "service_env",
    "service_secrets",
]
