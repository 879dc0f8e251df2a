"""PlatformSpec: the one source of truth.

``services/*/service.yaml`` says what each service *needs*; ``stacks/Pulumi.<stack>.yaml`` says how big
and where it runs. :func:`load_spec` reads both into validated pydantic models and cross-checks them.
Every failure is a :class:`SpecError` naming the file, the field and a hint.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import typing
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.errors import SpecError
from infra.labels import instance

REPO_ROOT = Path(__file__).resolve().parent.parent
#: libyaml's safe loader when PyYAML was built with it (~10x faster), else the pure-Python one.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Stacks (= ``platform:environment`` values) the repository ships.
STACKS: tuple[str, ...] = ("dev", "staging", "prod")
#: Suffixes components append to a service name for derived Kubernetes object names
#: (docs/architecture.md, "Kubernetes naming and labels"; a test keeps the two in step).
DERIVED_SUFFIXES = (
    "-allow-egress",
    "-allow-ingress",
    "-config",
    "-db",
    "-keys",
    "-migrate",
    "-rabbitmq",
    "-redis",
)
#: Kubernetes Service names are DNS-1035 labels: at most 63 characters.
DNS1035_MAX = 63
#: Suffix of the stack's second namespace, where the log shipper runs.
LOGS_NAMESPACE_SUFFIX = "-logs"
#: Kubernetes label values: at most 63 characters.
LABEL_VALUE_MAX = 63
#: The longest label value derived from a service name: the migration Job's instance label
#: ``<svc>-migrate-<stack>`` (``app.kubernetes.io/instance``), in the longest shipped stack.
LONGEST_LABEL_SUFFIX = f"-migrate-{max(STACKS, key=len)}"
MAX_SERVICE_NAME = min(
    DNS1035_MAX - max(len(s) for s in DERIVED_SUFFIXES), LABEL_VALUE_MAX - len(LONGEST_LABEL_SUFFIX)
)
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ROUTE = re.compile(r"^(/[a-z0-9][a-z0-9._-]*)+$")
QUANTITY_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
QUANTITY_MEM = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti)$")
DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d)$")
#: Names a service may not take: every fixed object name of docs/architecture.md (a service's own
#: Deployment, Service, labels and derived names would collide with them), the Redis/RabbitMQ users
#: the platform owns (a service's user is named after it) and a few names too generic to give away.
RESERVED_NAMES = frozenset(
    {
        # postgres
        "postgres",
        "postgresql",
        "postgres-superuser",
        "postgres-bootstrap",
        "postgres-backup",
        "postgres-backups",
        "postgres-exporter",
        # redis
        "redis",
        "redis-acl",
        "redis-config",
        "redis-exporter",
        # rabbitmq
        "rabbitmq",
        "rabbitmq-admin",
        "rabbitmq-config",
        "rabbitmq-definitions",
        # gateway
        "gateway",
        "gateway-config",
        "gateway-tls",
        "nginx",
        # monitoring and logging
        "prometheus",
        "prometheus-config",
        "prometheus-discovery",
        "alertmanager",
        "alertmanager-config",
        "alertmanager-webhook",
        "grafana",
        "grafana-admin",
        "grafana-config",
        "grafana-dashboards",
        "loki",
        "loki-config",
        "promtail",
        "promtail-config",
        # namespace-wide objects
        "jwt-signing",
        "registry-pull",
        "jwt-public-keys",
        "default-deny",
        "allow-dns",
        "logs-default-deny",
        "logs-allow-dns",
        "platform",
        "platform-quota",
        "platform-limits",
        "kube-system",
        # users of Redis (ACL) and RabbitMQ the platform owns
        "admin",
        "exporter",
        "default",
    }
)
#: A service name may not end like a derived object whose labels select its pods (``<svc>-migrate``).
RESERVED_NAME_SUFFIXES = ("-migrate",)
#: Database names PostgreSQL (or the platform's own roles) already use; a database's role has its name.
RESERVED_DATABASES = frozenset(
    {
        "postgres",
        "template0",
        "template1",
        "postgres_exporter",
        # Role names PostgreSQL reserves.
        "public",
        "none",
        "current_user",
        "current_role",
        "session_user",
    }
)

#: Environment variables of the docs/architecture.md contract the platform sets: exact names...
PLATFORM_ENV = frozenset(
    {
        "SERVICE_NAME",
        "ENVIRONMENT",
        "CORS_ORIGINS",
        "DB_MAX_OVERFLOW",
        "SECRETS_DIR",
        "FORWARDED_ALLOW_IPS",
        "SANDBOX_ALLOWED_REASON",
    }
)
#: Set from a stack's ``platform:services.<svc>.allowSandbox.reason`` (see :class:`SandboxAllowance`).
SANDBOX_REASON_ENV = "SANDBOX_ALLOWED_REASON"
#: Environments where a service's sandbox adapter is refused unless the stack allows it.
PRODUCTION_ENVIRONMENTS = frozenset({"staging", "prod"})
#: ...and prefixes (``LOG_LEVEL``, ``POSTGRES_HOST``, ``DB_POOL_SIZE``, ``JWT_PUBLIC_KEYS``...).
PLATFORM_ENV_PREFIXES = ("LOG_", "POSTGRES_", "DB_POOL_", "REDIS_", "RABBITMQ_", "JWT_")
#: Names that look like credentials. TOKEN and KEY only as the last word, so settings *about* tokens
#: (auth-svc's ``ACCESS_TOKEN_TTL_SECONDS``) stay tunable.
SECRET_LIKE_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|CREDENTIAL|(^|_)(TOKEN|KEY)S?$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
#: Names of keys in a stack's ``platform:tokens``: short DNS-style labels (they name Pulumi resources).
KEY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


class HintedValueError(ValueError):
    """A validation error that carries its own ``hint:`` line through :func:`load_spec`."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _check_env(env: dict[str, str]) -> dict[str, str]:
    """Extra variables must be UPPER_SNAKE, not the platform's own, and not secrets (ConfigMaps are plain)."""
    for key in env:
        if not ENV_NAME.match(key):
            raise HintedValueError(
                f"environment variable '{key}' must be UPPER_SNAKE_CASE", hint="e.g. FEATURE_FLAGS"
            )
        if key in PLATFORM_ENV or key.startswith(PLATFORM_ENV_PREFIXES):
            raise HintedValueError(
                f"'{key}' is set by the platform (docs/architecture.md, environment contract) and "
                "may not be overridden",
                hint="remove it; the platform derives it from the manifest and the stack "
                "(e.g. platform:gateway.corsOrigins for CORS_ORIGINS)",
            )
        if SECRET_LIKE_ENV.search(key):
            raise HintedValueError(
                f"'{key}' looks like a secret; env values are stored in plaintext in the service's ConfigMap",
                hint="keep credentials in a Kubernetes Secret mounted under SECRETS_DIR, not in env",
            )
    return env


class Strict(BaseModel):
    """Base model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if value in RESERVED_NAMES:
        raise ValueError(f"'{value}' is reserved for a platform component; choose another name")
    for suffix in RESERVED_NAME_SUFFIXES:
        if value.endswith(suffix):
            raise ValueError(
                f"'{value}' ends with '{suffix}', which is reserved for objects derived from a "
                f"service ('{value.removesuffix(suffix)}{suffix}'); choose another name"
            )
    if not DNS1035.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1035 label (lowercase letters, digits and '-', "
            "starting with a letter, not ending with '-')"
        )
    if len(value) > MAX_SERVICE_NAME:
        raise ValueError(
            f"'{value}' is {len(value)} characters; at most {MAX_SERVICE_NAME} so derived "
            f"object names and labels (e.g. '<name>{LONGEST_LABEL_SUFFIX}') fit in 63"
        )
    return value


ServiceName = Annotated[str, Field(description="DNS-1035 service name")]
CpuQuantity = Annotated[str, Field(pattern=QUANTITY_CPU.pattern)]
MemQuantity = Annotated[str, Field(pattern=QUANTITY_MEM.pattern)]
Duration = Annotated[str, Field(pattern=DURATION.pattern)]


# ---------------------------------------------------------------- service manifest


class TemplateRef(Strict):
    """Which scaffolder template generated the service, and at which git commit."""

    name: str = "fastapi"
    version: str = "unknown"


class ComputeQuantities(Strict):
    cpu: CpuQuantity
    memory: MemQuantity


class Resources(Strict):
    """Container requests and limits. Defaults suit a small FastAPI service."""

    requests: ComputeQuantities = ComputeQuantities(cpu="100m", memory="128Mi")
    limits: ComputeQuantities = ComputeQuantities(cpu="500m", memory="256Mi")


class PostgresNeed(Strict):
    """The service owns one database (and a role of the same name)."""

    database: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

    @field_validator("database")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith("pg_") or value in RESERVED_DATABASES:
            raise ValueError(
                f"'{value}' is reserved (names starting with 'pg_', and "
                + ", ".join(sorted(RESERVED_DATABASES))
                + ": PostgreSQL's own and the platform's roles)"
            )
        return value


class RedisNeed(Strict):
    """The service uses Redis; ``db`` is its logical database index."""

    db: Annotated[int, Field(ge=0, le=15)] = 0


class RabbitNeed(Strict):
    """Event routing keys the service publishes and consumes on the ``events`` exchange."""

    publishes: list[str] = []
    consumes: list[str] = []

    @field_validator("publishes", "consumes")
    @classmethod
    def _event_names(cls, events: list[str]) -> list[str]:
        for event in events:
            if not EVENT_NAME.match(event):
                raise ValueError(
                    f"'{event}' is not an event name like 'listing.created' (lowercase dot-separated words)"
                )
        if len(set(events)) != len(events):
            raise ValueError("lists an event twice")
        return events


class Needs(Strict):
    """Backing services this service needs. Absent means not needed."""

    postgres: PostgresNeed | None = None
    redis: RedisNeed | None = None
    rabbitmq: RabbitNeed | None = None


class GatewayRoute(Strict):
    """Per-route gateway policy."""

    cache: bool = Field(False, description="proxy_cache GET responses of this route")
    cache_ttl: Duration = "30s"
    websocket: bool = Field(False, description="allow WebSocket upgrades on this route")
    body_limit: Annotated[str, Field(pattern=r"^[0-9]+[km]$")] | None = Field(
        None, description="client_max_body_size override, e.g. '2m'"
    )


def _check_secret_names(names: list[str]) -> list[str]:
    """Generated keys are files named like variables; never a platform variable."""
    for name in names:
        if not ENV_NAME.match(name):
            raise HintedValueError(f"secret '{name}' must be UPPER_SNAKE_CASE", hint="e.g. FINGERPRINT_KEY")
        if name in PLATFORM_ENV or name.startswith(PLATFORM_ENV_PREFIXES):
            raise HintedValueError(
                f"secret '{name}' is a variable the platform sets",
                hint="name it after its use, e.g. FINGERPRINT_KEY",
            )
    if len(set(names)) != len(names):
        raise ValueError("lists a secret twice")
    return names


class SandboxAdapter(Strict):
    """A test double the service runs unless configured otherwise (payment-svc's sandbox processor).

    It is in use when the service's ``variable`` is unset or equals ``value``. In staging and prod
    the service refuses to start with it, and ``platform check`` reports it, unless the stack allows
    it with a reason (``platform:services.<svc>.allowSandbox.reason``).
    """

    variable: Annotated[str, Field(pattern=ENV_NAME.pattern)]
    value: str
    description: Annotated[str, Field(min_length=1, max_length=200)]


class ServiceManifest(Strict):
    """``services/<name>/service.yaml``: what a service needs, independent of environment."""

    name: str
    description: str = ""
    template: TemplateRef = TemplateRef()
    port: Annotated[int, Field(ge=1024, le=65535)] = 8000
    route: str
    gateway: GatewayRoute = GatewayRoute()
    needs: Needs = Needs()
    resources: Resources = Resources()
    env: dict[str, str] = Field(
        {},
        description="extra non-secret environment variables (not the platform's "
        "contract variables, not secret-like names such as *PASSWORD*, *SECRET*, *_TOKEN, *_KEY)",
    )
    issues_tokens: bool = Field(
        False,
        description="holds the platform's token-signing key (JWT_SIGNING_KEY; at most one service, "
        "auth-svc); every service gets the public keys (JWT_PUBLIC_KEYS)",
    )
    secrets: list[str] = Field(
        [],
        description="random keys the platform generates for this service alone, each a file of the "
        "same UPPER_SNAKE name under SECRETS_DIR (Secret <name>-keys), e.g. FINGERPRINT_KEY",
    )
    sandbox: SandboxAdapter | None = Field(
        None,
        description="a test adapter the service runs by default (refused in staging/prod unless allowed)",
    )

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, names: list[str]) -> list[str]:
        return _check_secret_names(names)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("route")
    @classmethod
    def _route(cls, value: str) -> str:
        if not ROUTE.match(value):
            raise ValueError(
                f"'{value}' is not a route like '/api/orders' (starts with '/', lowercase "
                "segments, no trailing '/')"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @property
    def package(self) -> str:
        """Python package name of the service (``auth-svc`` -> ``auth_svc``)."""
        return self.name.replace("-", "_")


class WebAppManifest(Strict):
    """``frontend/service.yaml`` (``kind: web``): the web app, a tenant like the services.

    The gateway routes ``/`` and every page to it (``/api/...`` stays with the services), serves
    ``/_next/static/`` with long immutable caching and compression, and sends its HTML with a
    nonce-based Content-Security-Policy (docs/adr/0011-web-app-on-the-platform.md).
    """

    kind: Literal["web"]
    name: str
    description: str = ""
    port: Annotated[int, Field(ge=1024, le=65535)] = 3000
    health: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9._-]+)+$")] = Field(
        "/healthz", description="path the probes call on the app itself (never through the gateway)"
    )
    metrics: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9._-]+)+$")] | None = Field(
        None, description="Prometheus metrics path the app exposes, scraped like a service's /metrics"
    )
    api_base_url_env: Annotated[str, Field(pattern=ENV_NAME.pattern)] = Field(
        "API_BASE_URL",
        description="variable the platform sets to the gateway's in-cluster API address "
        "(server-side rendering calls /api/... there)",
    )
    resources: Resources = Resources(
        requests=ComputeQuantities(cpu="100m", memory="192Mi"),
        limits=ComputeQuantities(cpu="500m", memory="384Mi"),
    )
    env: dict[str, str] = Field({}, description="extra non-secret environment variables (same rules)")
    apis: list[str] = Field(
        [],
        description="services whose typed client the app uses (python -m infra.api_client generates "
        "one per name; a service scaffolded later gets none until it is added here)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)


# ---------------------------------------------------------------- stack config


class Autoscale(Strict):
    min: Annotated[int, Field(ge=1)] = 1
    max: Annotated[int, Field(ge=1)] = 3
    cpu_percent: Annotated[int, Field(ge=10, le=100, alias="cpuPercent")] = 70

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class SandboxAllowance(Strict):
    """Why this stack may run the service's sandbox adapter (staging/prod; ``platform check`` shows it)."""

    reason: Annotated[str, Field(min_length=10, max_length=300)]


class ServiceOverrides(Strict):
    """Per-stack sizing of one service."""

    replicas: Annotated[int, Field(ge=1, le=100)] = 1
    autoscale: Autoscale | None = None
    resources: Resources | None = None
    env: dict[str, str] = Field(
        {}, description="extra environment variables for this stack; same rules as the manifest's env"
    )
    allow_sandbox: SandboxAllowance | None = Field(
        None,
        alias="allowSandbox",
        description="let the service run its sandbox adapter in this staging/prod stack, with the reason",
    )

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)


class Tls(Strict):
    """TLS at the gateway. The certificate lives in a kubernetes.io/tls Secret."""

    enabled: bool = True
    secret_name: str = Field("gateway-tls", alias="secretName")
    cluster_issuer: str | None = Field(None, alias="clusterIssuer", description="cert-manager issuer")


class RateLimit(Strict):
    rps: Annotated[int, Field(ge=1)] = 20
    burst: Annotated[int, Field(ge=0)] = 40


class GatewayConfig(Strict):
    replicas: Annotated[int, Field(ge=1)] = 1
    autoscale: Autoscale | None = None
    rate_limit: RateLimit = Field(RateLimit(), alias="rateLimit")
    body_limit: Annotated[str, Field(pattern=r"^[0-9]+[km]$")] = Field("1m", alias="bodyLimit")
    cors_origins: list[str] = Field([], alias="corsOrigins")
    ingress_class: str = Field("nginx", alias="ingressClass")
    ingress_await: bool = Field(
        True,
        alias="ingressAwait",
        description="wait until the Ingress controller publishes the Ingress's address; false sets "
        "pulumi.com/skipAwait (for controllers that publish no status, where `up` would hang)",
    )
    ingress_namespace: str = Field(
        "ingress-nginx",
        alias="ingressNamespace",
        description="namespace of the Ingress controller: the only pods allowed to reach the gateway",
    )
    resources: Resources = Resources()

    @field_validator("ingress_namespace")
    @classmethod
    def _ingress_namespace(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value) or len(value) > DNS1035_MAX:
            raise ValueError(f"'{value}' is not a namespace name (DNS-1123 label, e.g. 'ingress-nginx')")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not re.match(r"^https?://[a-z0-9.-]+(:[0-9]+)?$", origin):
                raise ValueError(f"'{origin}' is not an origin like 'https://app.example.com'")
        return origins


class Backup(Strict):
    schedule: str = "0 3 * * *"
    retention_days: Annotated[int, Field(ge=1, le=365, alias="retentionDays")] = 7
    storage: MemQuantity = "5Gi"


class PostgresConfig(Strict):
    version: str = "16.4"
    storage: MemQuantity = "5Gi"
    storage_class: str | None = Field(None, alias="storageClass")
    backup: Backup = Backup()
    resources: Resources = Resources(
        requests=ComputeQuantities(cpu="250m", memory="512Mi"),
        limits=ComputeQuantities(cpu="1", memory="1Gi"),
    )


class RedisConfig(Strict):
    version: str = "7.2.5"
    persistence: Literal["none", "rdb", "aof"] = "rdb"
    storage: MemQuantity = "1Gi"
    maxmemory: MemQuantity = "256Mi"
    resources: Resources = Resources()


class RabbitConfig(Strict):
    version: str = "3.13.7"
    storage: MemQuantity = "2Gi"
    retry_delays_ms: list[Annotated[int, Field(ge=100)]] = Field(
        [1000, 5000, 30000], alias="retryDelaysMs", min_length=1
    )
    resources: Resources = Resources(
        requests=ComputeQuantities(cpu="200m", memory="512Mi"),
        limits=ComputeQuantities(cpu="1", memory="1Gi"),
    )

    @property
    def max_attempts(self) -> int:
        """Deliveries before a message is dead-lettered: the first plus one per retry delay."""
        return len(self.retry_delays_ms) + 1


class MonitoringConfig(Strict):
    retention: Duration = "15d"
    storage: MemQuantity = "10Gi"
    scrape_interval: Duration = Field("15s", alias="scrapeInterval")
    latency_p99_seconds: float = Field(0.5, alias="latencyP99Seconds", gt=0)
    error_ratio: float = Field(0.05, alias="errorRatio", gt=0, lt=1)
    slo_availability: float = Field(0.995, alias="sloAvailability", gt=0.5, lt=1)


class LoggingConfig(Strict):
    retention: Duration = "168h"
    storage: MemQuantity = "10Gi"


class Quota(Strict):
    cpu: CpuQuantity = "8"
    memory: MemQuantity = "16Gi"
    pods: Annotated[int, Field(ge=1)] = 100


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(
            f"'{value}' is not a network like '10.0.0.1/32' (address/prefix, host bits zero)"
        ) from None


Cidr = Annotated[str, AfterValidator(_cidr)]


class ApiServer(Strict):
    """The Kubernetes API server's endpoints (``kubectl get endpoints kubernetes -n default``): the only
    address Prometheus and Promtail may reach outside the namespace, for service discovery."""

    cidrs: list[Cidr] = Field(min_length=1, description="its endpoint addresses, e.g. [10.0.0.1/32]")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(6443, description="its endpoint port")


class ClusterConfig(Strict):
    """The cluster the stack deploys to: ``pulumi up`` never uses whatever kubeconfig context is current.

    staging and prod must name a context (or a kubeconfig file); dev may leave both unset and deploy
    to the current context.
    """

    context: str | None = Field(None, description="kubeconfig context of the stack's cluster")
    kubeconfig: str | None = Field(
        None, description="path of a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"
    )
    api_server: ApiServer = Field(ApiServer(cidrs=["10.0.0.1/32"]), alias="apiServer")
    pod_cidr: Cidr = Field(
        "10.244.0.0/16",
        alias="podCidr",
        description="the cluster's pod network: services trust X-Forwarded-For only from a peer in it, and "
        "their NetworkPolicy lets only the gateway (and Prometheus) in",
    )


class TokenKeys(Strict):
    """Token-signing keys (Ed25519), by name; each is generated once and kept in the stack's state.

    Rotation without downtime: add a new name to ``keys`` (every service learns its public key),
    deploy; then make it the ``signingKey``, deploy; drop the old name once the refresh tokens it
    signed have expired (``REFRESH_TOKEN_TTL_SECONDS``, 14 days), or earlier to log everyone out.
    """

    keys: list[str] = Field(
        ["initial"], min_length=1, max_length=3, description="published keys (JWT_PUBLIC_KEYS), by name"
    )
    signing_key: str = Field("initial", alias="signingKey", description="the key auth-svc signs with")

    @field_validator("keys")
    @classmethod
    def _key_names(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not KEY_NAME.match(key):
                raise ValueError(f"'{key}' is not a key name like '2025-06' (lowercase letters, digits, '-')")
        if len(set(keys)) != len(keys):
            raise ValueError("lists a key twice")
        return keys

    @model_validator(mode="after")
    def _signing_key_is_published(self) -> TokenKeys:
        if self.signing_key not in self.keys:
            raise HintedValueError(
                f"signingKey '{self.signing_key}' is not one of keys {self.keys}",
                hint="publish a key (add it to keys, deploy) before signing with it",
            )
        return self


class StackConfig(Strict):
    """The ``platform:*`` keys of ``stacks/Pulumi.<stack>.yaml`` (without the prefix)."""

    environment: Literal["dev", "staging", "prod"]
    namespace: str
    domain: str
    kubernetes_version: str = Field("1.30", alias="kubernetesVersion", pattern=r"^1\.[0-9]+$")
    registry: str
    tls: Tls = Tls()
    gateway: GatewayConfig = GatewayConfig()
    postgres: PostgresConfig = PostgresConfig()
    redis: RedisConfig = RedisConfig()
    rabbitmq: RabbitConfig = RabbitConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    logging: LoggingConfig = LoggingConfig()
    quota: Quota = Quota()
    cluster: ClusterConfig = ClusterConfig()
    registry_username: str | None = Field(
        None,
        alias="registryUsername",
        description="user for platform:registry; its password is the Pulumi secret "
        "platform:registryPassword, delivered to every pod as the image pull Secret 'registry-pull'",
    )
    rotation: dict[str, Annotated[int, Field(ge=0)]] = Field(
        {},
        description="credential -> generation (e.g. postgres/auth-svc: 1); raising a generation replaces "
        "that password and rolls everything that holds it (docs/deploy.md, 'Rotating a password')",
    )
    tokens: TokenKeys = TokenKeys()
    services: dict[str, ServiceOverrides] = {}

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not DNS1035.match(value) or len(value) > DNS1035_MAX:
            raise ValueError(f"'{value}' is not a valid namespace name (DNS-1035 label)")
        if len(value) > DNS1035_MAX - len(LOGS_NAMESPACE_SUFFIX):
            raise ValueError(
                f"'{value}' is {len(value)} characters; at most {DNS1035_MAX - len(LOGS_NAMESPACE_SUFFIX)} "
                f"so its logs namespace '<namespace>{LOGS_NAMESPACE_SUFFIX}' fits in 63"
            )
        return value

    @property
    def logs_namespace(self) -> str:
        """The namespace of the log shipper (Promtail needs a hostPath, which the restricted Pod Security
        profile of the stack's namespace refuses)."""
        return f"{self.namespace}{LOGS_NAMESPACE_SUFFIX}"

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not re.match(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$", value):
            raise ValueError(f"'{value}' is not a domain name like 'market.example.com'")
        return value


# ---------------------------------------------------------------- the whole platform


class ServiceSpec(Strict):
    """One service as deployed in one stack: its manifest merged with the stack's overrides."""

    manifest: ServiceManifest
    overrides: ServiceOverrides
    path: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def resources(self) -> Resources:
        return self.overrides.resources or self.manifest.resources

    @property
    def env(self) -> dict[str, str]:
        env = {**self.manifest.env, **self.overrides.env}
        if self.overrides.allow_sandbox is not None:
            env[SANDBOX_REASON_ENV] = self.overrides.allow_sandbox.reason
        return env

    @property
    def runs_sandbox(self) -> bool:
        """True when the service's sandbox adapter is in use in this stack (its variable unset or
        set to the sandbox's value)."""
        sandbox = self.manifest.sandbox
        return sandbox is not None and self.env.get(sandbox.variable, sandbox.value) == sandbox.value


class WebAppSpec(Strict):
    """The web app as deployed in one stack: its manifest merged with the stack's overrides
    (``platform:services.<name>``: replicas, autoscale, resources, env)."""

    manifest: WebAppManifest
    overrides: ServiceOverrides
    path: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def resources(self) -> Resources:
        return self.overrides.resources or self.manifest.resources

    @property
    def env(self) -> dict[str, str]:
        return {**self.manifest.env, **self.overrides.env}


class PlatformSpec(BaseModel):
    """Everything a stack deploys. Build it with :func:`load_spec`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    stack: str
    project: str = "platform"
    config: StackConfig
    services: tuple[ServiceSpec, ...]
    web_apps: tuple[WebAppSpec, ...] = ()

    def service(self, name: str) -> ServiceSpec:
        """The service called *name*; KeyError if absent."""
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    @property
    def web(self) -> WebAppSpec | None:
        """The web app (``frontend/service.yaml``), which the gateway routes ``/`` to, if any."""
        return self.web_apps[0] if self.web_apps else None

    @property
    def token_issuer(self) -> ServiceSpec | None:
        """The service holding the token-signing key (``issues_tokens``), if any."""
        return next((svc for svc in self.services if svc.manifest.issues_tokens), None)

    @cached_property
    def publishers(self) -> dict[str, list[str]]:
        """Event routing key -> names of services that publish it."""
        result: dict[str, list[str]] = {}
        for svc in self.services:
            if svc.manifest.needs.rabbitmq:
                for event in svc.manifest.needs.rabbitmq.publishes:
                    result.setdefault(event, []).append(svc.name)
        return result

    @cached_property
    def consumers(self) -> dict[str, list[str]]:
        """Service name -> routing keys it consumes (only services that consume something)."""
        return {
            svc.name: list(svc.manifest.needs.rabbitmq.consumes)
            for svc in self.services
            if svc.manifest.needs.rabbitmq and svc.manifest.needs.rabbitmq.consumes
        }


# ---------------------------------------------------------------- loading


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys (as written in YAML: aliases) the model at *loc*'s parent accepts."""
    models = [model] if model else []
    for part in loc[:-1]:
        nested: list[type[BaseModel]] = []
        for current in models:
            for name, info in current.model_fields.items():
                if part in (name, info.alias):
                    nested += _models_in(info.annotation)
        if nested:
            models = nested  # a dict's key (a service name) keeps the value model for the next part
    return sorted({info.alias or name for m in models for name, info in m.model_fields.items()})


def _hint_for(error: dict[str, Any], model: type[BaseModel] | None = None, prefix: str = "") -> str:
    hint = getattr(error.get("ctx", {}).get("error"), "hint", None)
    if hint:
        return str(hint)
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        close = difflib.get_close_matches(key, _allowed_keys(model, tuple(error["loc"])), n=1, cutoff=0.6)
        if close:
            return f"did you mean {prefix if len(error['loc']) == 1 else ''}{close[0]}? (see docs/spec.md)"
        return "remove the key or fix its spelling; see docs/spec.md for the allowed keys"
    if kind == "missing":
        return "add the field; see docs/spec.md"
    if kind.startswith("string_pattern"):
        return f"use a value matching {error.get('ctx', {}).get('pattern', 'the documented format')}"
    return "fix the value; see docs/spec.md for the field's format"


def _validation_error(
    file: Path, exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> SpecError:
    errors = exc.errors()
    # A misspelt key shows up twice: the real key "missing", the typo "extra". Report the typo.
    typos = [
        e for e in errors if e["type"] == "extra_forbidden" and _hint_for(e, model).startswith("did you")
    ]
    error = typos[0] if typos else errors[0]
    field = prefix + _format_loc(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    hint = _hint_for(error, model, prefix)
    return SpecError(f"{_rel(file)}: {field}: {message}", hint=hint, file=file, field=field)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(file: Path) -> Any:
    """Parse a YAML file, turning parse errors into :class:`SpecError`."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SpecError(f"{_rel(file)}: file not found", hint="check the path", file=file) from exc
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(
            f"{_rel(file)}: broken YAML{where}: {getattr(exc, 'problem', exc)}",
            hint="fix the YAML syntax (indentation, quotes, colons)",
            file=file,
        ) from exc


def load_manifest(file: Path) -> ServiceManifest:
    """Load and validate one ``service.yaml``."""
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise SpecError(f"{_rel(file)}: expected a mapping", hint="see docs/spec.md", file=file)
    try:
        manifest = ServiceManifest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(file, exc, model=ServiceManifest) from exc
    if manifest.name != file.parent.name:
        raise SpecError(
            f"{_rel(file)}: name: '{manifest.name}' does not match its folder '{file.parent.name}'",
            hint=f"rename the folder or set name: {file.parent.name}",
            file=file,
            field="name",
        )
    return manifest


#: Folders (relative to the repository root) whose ``service.yaml`` is a web app (``kind: web``).
WEB_APP_DIRS = ("frontend",)


def load_web_manifest(file: Path) -> WebAppManifest:
    """Load and validate a web app's ``service.yaml``."""
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise SpecError(f"{_rel(file)}: expected a mapping", hint="see docs/spec.md", file=file)
    try:
        return WebAppManifest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(file, exc) from exc


def stack_file(root: Path, stack: str) -> Path:
    """Path of a stack's config file."""
    return root / "stacks" / f"Pulumi.{stack}.yaml"


def available_stacks(root: Path = REPO_ROOT) -> list[str]:
    """Stacks that have a config file, sorted."""
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (root / "stacks").glob("Pulumi.*.yaml")
    )


def config_from_stack_file(file: Path) -> dict[str, Any]:
    """The ``platform:*`` config keys of a stack file, prefix stripped."""
    data = read_yaml(file) or {}
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise SpecError(
            f"{_rel(file)}: config: expected a mapping", hint="see docs/spec.md", file=file, field="config"
        )
    result: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace != "platform":
            continue  # provider config such as kubernetes:context
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted secrets are read by Pulumi, never by the spec
        result[name] = value
    return result


def parse_config(file: Path, config: dict[str, Any]) -> StackConfig:
    """Validate ``platform:*`` keys into a :class:`StackConfig`."""
    try:
        return StackConfig.model_validate(config)
    except ValidationError as exc:
        raise _validation_error(file, exc, prefix="platform:", model=StackConfig) from exc


def load_spec(stack: str, root: Path = REPO_ROOT, config: dict[str, Any] | None = None) -> PlatformSpec:
    """Load every service manifest and the stack's config into a cross-checked PlatformSpec.

    *config* overrides reading ``stacks/Pulumi.<stack>.yaml`` (the Pulumi program passes what the
    engine gives it, so ``pulumi config set`` is honoured).
    """
    file = stack_file(root, stack)
    if config is None:
        if not file.exists():
            known = ", ".join(available_stacks(root)) or "none"
            raise SpecError(
                f"unknown stack '{stack}': {_rel(file)} does not exist",
                hint=f"use one of: {known}",
                file=file,
            )
        config = config_from_stack_file(file)
    stack_config = parse_config(file, config)
    check_cluster(file, stack_config)
    manifests = [load_manifest(f) for f in sorted((root / "services").glob("*/service.yaml"))]
    services = tuple(
        ServiceSpec(
            manifest=m,
            overrides=stack_config.services.get(m.name, ServiceOverrides()),
            path=(root / "services" / m.name),
        )
        for m in manifests
    )
    web_apps = tuple(
        WebAppSpec(
            manifest=(m := load_web_manifest(root / folder / "service.yaml")),
            overrides=stack_config.services.get(m.name, ServiceOverrides()),
            path=root / folder,
        )
        for folder in WEB_APP_DIRS
        if (root / folder / "service.yaml").is_file()
    )
    spec = PlatformSpec(stack=stack, config=stack_config, services=services, web_apps=web_apps)
    cross_check(spec, file, root)
    return spec


def check_cluster(file: Path, config: StackConfig) -> None:
    """staging and prod name their cluster: never deploy to whatever kubeconfig context is current."""
    cluster = config.cluster
    if config.environment != "dev" and not (cluster.context or cluster.kubeconfig):
        raise SpecError(
            f"{_rel(file)}: platform:cluster.context: a {config.environment} stack must name its cluster",
            hint="set platform:cluster.context (a kubeconfig context) or platform:cluster.kubeconfig; "
            "without either, pulumi would deploy to whatever context is current",
            file=file,
            field="platform:cluster.context",
        )


def _check_rotation(spec: PlatformSpec, stack_path: Path) -> None:
    from infra.credentials import credential_names

    known = credential_names(spec)
    for name in spec.config.rotation:
        if name not in known:
            raise SpecError(
                f"{_rel(stack_path)}: platform:rotation.{name}: no credential called '{name}'",
                hint=f"credentials of this stack: {', '.join(known)}",
                file=stack_path,
                field=f"platform:rotation.{name}",
            )


def _routes_overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def cross_check(spec: PlatformSpec, stack_path: Path, root: Path) -> None:
    """Checks that span several files: routes, events, databases, stack entries."""
    by_name: dict[str, Any] = {svc.name: svc for svc in spec.services}
    for app in spec.web_apps:
        if app.name in by_name:
            file = app.path / "service.yaml"
            raise SpecError(
                f"{_rel(file)}: name: '{app.name}' is already the name of a service",
                hint="give the web app a name no service uses, e.g. web",
                file=file,
                field="name",
            )
        by_name[app.name] = app
        services = {svc.name for svc in spec.services}
        for api in app.manifest.apis:
            if api not in services:
                file = app.path / "service.yaml"
                raise SpecError(
                    f"{_rel(file)}: apis: no service called '{api}'",
                    hint=f"name services the app calls; known services: {', '.join(sorted(services))}",
                    file=file,
                    field="apis",
                )
    for name in spec.config.services:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise SpecError(
                f"{_rel(stack_path)}: platform:services.{name}: no service called '{name}' "
                f"(no services/{name}/service.yaml)",
                hint=f"remove the entry or fix its name; known services: {known}",
                file=stack_path,
                field=f"platform:services.{name}",
            )
    issuers = [svc for svc in spec.services if svc.manifest.issues_tokens]
    if len(issuers) > 1:
        file = issuers[1].path / "service.yaml"
        raise SpecError(
            f"{_rel(file)}: issues_tokens: {issuers[0].name} already issues the platform's tokens",
            hint="only one service holds the signing key; verify tokens with the public keys instead",
            file=file,
            field="issues_tokens",
        )
    seen_routes: dict[str, str] = {}
    seen_dbs: dict[str, str] = {}
    for svc in spec.services:
        file = svc.path / "service.yaml"
        route = svc.manifest.route
        for other_route, other in seen_routes.items():
            if _routes_overlap(route, other_route):
                verb = "duplicates" if route == other_route else "overlaps"
                raise SpecError(
                    f"{_rel(file)}: route: '{route}' {verb} '{other_route}' of {other}",
                    hint="give each service its own route prefix, e.g. /api/<resource>",
                    file=file,
                    field="route",
                )
        seen_routes[route] = svc.name
        longest = instance(f"{svc.name}-migrate", spec.stack)
        if len(longest) > LABEL_VALUE_MAX:
            raise SpecError(
                f"{_rel(file)}: name: in stack '{spec.stack}' the derived label value '{longest}' is "
                f"{len(longest)} characters (Kubernetes allows {LABEL_VALUE_MAX})",
                hint="shorten the service name or the stack name",
                file=file,
                field="name",
            )
        pg = svc.manifest.needs.postgres
        if pg:
            if pg.database in seen_dbs:
                raise SpecError(
                    f"{_rel(file)}: needs.postgres.database: '{pg.database}' is already owned by "
                    f"{seen_dbs[pg.database]}",
                    hint="each service owns its own database; pick another name",
                    file=file,
                    field="needs.postgres.database",
                )
            seen_dbs[pg.database] = svc.name
    _check_rotation(spec, stack_path)
    published = spec.publishers
    for svc in spec.services:
        rabbit = svc.manifest.needs.rabbitmq
        if not rabbit:
            continue
        for event in rabbit.consumes:
            if event not in published:
                file = svc.path / "service.yaml"
                known = ", ".join(sorted(published)) or "nothing"
                raise SpecError(
                    f"{_rel(file)}: needs.rabbitmq.consumes: no service publishes '{event}'",
                    hint=f"published events are: {known}",
                    file=file,
                    field="needs.rabbitmq.consumes",
                )
