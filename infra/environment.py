"""The service environment contract (docs/architecture.md), built once for every way a service runs.

A service reads the same variables in Kubernetes (its ``<svc>-config`` ConfigMap), under docker compose
(``compose.yaml``) and under ``platform dev`` (the native runner); only where things are differs, and
that is an :class:`Endpoints`. Credentials are not in it: Kubernetes and ``platform dev`` hand them over as
files under ``SECRETS_DIR``; compose passes them as variables (see :func:`credential_variables`).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import PlatformSpec, ServiceSpec, WebAppSpec

POSTGRES_PORT = 5432
REDIS_PORT = 6379
RABBITMQ_PORT = 5672
RABBITMQ_VHOST = "market"
JWT_AUDIENCE = "marketplace"


@dataclass(frozen=True)
class Endpoints:
    """Where a service finds its backends, its issuer and its credentials in one environment."""

    environment: str
    postgres: tuple[str, int]
    redis: tuple[str, int]
    rabbitmq: tuple[str, int]
    jwt_issuer: str
    #: uvicorn takes the client address from X-Forwarded-For only from these peers: the gateway.
    forwarded_allow_ips: str
    #: Where the credential files are; None when credentials come as variables (compose).
    secrets_dir: str | None = None

    @classmethod
    def kubernetes(cls, spec: PlatformSpec, secrets_dir: str) -> Endpoints:
        """In-cluster Service names; the issuer behind the public domain.

        The gateway's pods have no fixed address, so uvicorn trusts the cluster's pod network
        (``platform:cluster.podCidr``, not every private range) and the service's NetworkPolicy lets
        only the gateway (and Prometheus, which sends no such header) reach its port.
        """
        cfg = spec.config
        return cls(
            environment=cfg.environment,
            postgres=("postgres", POSTGRES_PORT),
            redis=("redis", REDIS_PORT),
            rabbitmq=("rabbitmq", RABBITMQ_PORT),
            jwt_issuer=f"https://{cfg.domain}/api/auth",
            forwarded_allow_ips=cfg.cluster.pod_cidr,
            secrets_dir=secrets_dir,
        )


def service_environment(
    spec: PlatformSpec, svc: ServiceSpec, where: Endpoints, *, log_level: str = "INFO"
) -> dict[str, str]:
    """The contract's variables for *svc*, then the manifest's and the stack's own ``env``."""
    needs = svc.manifest.needs
    env = {
        "SERVICE_NAME": svc.name,
        "ENVIRONMENT": where.environment,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
        "CORS_ORIGINS": ",".join(spec.config.gateway.cors_origins),
        "JWT_ISSUER": where.jwt_issuer,
        "JWT_AUDIENCE": JWT_AUDIENCE,
        "FORWARDED_ALLOW_IPS": where.forwarded_allow_ips,
    }
    if where.secrets_dir is not None:
        env["SECRETS_DIR"] = where.secrets_dir
    if needs.postgres:
        host, port = where.postgres
        env |= {"POSTGRES_HOST": host, "POSTGRES_PORT": str(port), "POSTGRES_DB": needs.postgres.database}
    if needs.redis:
        host, port = where.redis
        env |= {"REDIS_HOST": host, "REDIS_PORT": str(port), "REDIS_DB": str(needs.redis.db)}
    if needs.rabbitmq:
        host, port = where.rabbitmq
        env |= {"RABBITMQ_HOST": host, "RABBITMQ_PORT": str(port), "RABBITMQ_VHOST": RABBITMQ_VHOST}
        env["RABBITMQ_RETRY_DELAYS_MS"] = ",".join(str(d) for d in spec.config.rabbitmq.retry_delays_ms)
    return {**env, **svc.env}


def credential_variables(svc: ServiceSpec) -> dict[str, str]:
    """The credential variables of *svc* -> the user each holds ('' for a secret: the token keys, the
    service's own keys and the passwords). Kubernetes and ``platform dev`` write each as a file named
    like it under SECRETS_DIR.

    Every service verifies tokens (``JWT_PUBLIC_KEYS``); only the issuer signs (``JWT_SIGNING_KEY``).
    """
    needs = svc.manifest.needs
    result = {"JWT_PUBLIC_KEYS": ""}
    if svc.manifest.issues_tokens:
        result["JWT_SIGNING_KEY"] = ""
    result |= {key: "" for key in svc.manifest.secrets}
    if needs.postgres:
        result |= {"POSTGRES_USER": needs.postgres.database, "POSTGRES_PASSWORD": ""}
    if needs.redis:
        result |= {"REDIS_USER": svc.name, "REDIS_PASSWORD": ""}
    if needs.rabbitmq:
        result |= {"RABBITMQ_USER": svc.name, "RABBITMQ_PASSWORD": ""}
    return result


#: Where the web app's build writes at run time (Next.js' image and fetch caches): an emptyDir under
#: the read-only root in Kubernetes.
WEB_CACHE_DIR = "/app/.next/cache"


def web_environment(
    spec: PlatformSpec,
    app: WebAppSpec,
    *,
    environment: str,
    api_base_url: str,
    host: str = "0.0.0.0",  # the pod address; the NetworkPolicy admits only the gateway
    log_level: str = "INFO",
) -> dict[str, str]:
    """The web app's variables: where Next.js listens, where its server-side code calls the API (the
    gateway's internal listener), and the logging contract the services share."""
    env = {
        "SERVICE_NAME": app.name,
        "ENVIRONMENT": environment,
        "NODE_ENV": "production",
        "NEXT_TELEMETRY_DISABLED": "1",
        "PORT": str(app.manifest.port),
        "HOSTNAME": host,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
        app.manifest.api_base_url_env: api_base_url,
    }
    return {**env, **app.env}
