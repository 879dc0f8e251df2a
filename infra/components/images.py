"""Every third-party container image the platform runs, pinned in one place.

Tags are exact releases (never ``latest``). Set a digest in :data:`DIGESTS` to pin by content as
well; :func:`image` then renders ``repo:tag@sha256:...`` which the kubelet verifies on pull.
Versions of PostgreSQL, Redis and RabbitMQ come from the stack config (``platform:postgres.version``...).
"""

from __future__ import annotations

#: Third-party images by role -> ``repository:tag``.
IMAGES: dict[str, str] = {
    "postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
    "redis-exporter": "docker.io/oliver006/redis_exporter:v1.62.0",
    "gateway": "docker.io/nginxinc/nginx-unprivileged:1.27.1-alpine",
    "prometheus": "docker.io/prom/prometheus:v2.54.1",
    "alertmanager": "docker.io/prom/alertmanager:v0.28.1",  # url_file (0.26+), fixed in 0.28.0
    "grafana": "docker.io/grafana/grafana:11.2.0",
    "loki": "docker.io/grafana/loki:3.1.1",
    "promtail": "docker.io/grafana/promtail:3.1.1",
}

#: Optional content digests (``sha256:<hex>``) keyed like :data:`IMAGES` or by ``repository:tag``.
DIGESTS: dict[str, str] = {}


def _pin(reference: str, key: str) -> str:
    digest = DIGESTS.get(key) or DIGESTS.get(reference)
    return f"{reference}@{digest}" if digest else reference


def image(role: str) -> str:
    """The pinned reference of a third-party image by role (KeyError for an unknown role)."""
    return _pin(IMAGES[role], role)


def postgres(version: str) -> str:
    """The official PostgreSQL image at the stack's version."""
    return _pin(f"docker.io/library/postgres:{version}-bookworm", "postgres")


def redis(version: str) -> str:
    """The official Redis image at the stack's version."""
    return _pin(f"docker.io/library/redis:{version}-bookworm", "redis")


def rabbitmq(version: str) -> str:
    """The official RabbitMQ image at the stack's version (ships the prometheus plugin)."""
    return _pin(f"docker.io/library/rabbitmq:{version}", "rabbitmq")
