"""Wire every component of a stack together: ``build_platform(spec)`` is the whole Pulumi program."""

from __future__ import annotations

import pulumi

from infra.components.gateway import Gateway, GatewayArgs
from infra.components.logs import Logging, LoggingArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.namespace import Namespace, NamespaceArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.rabbitmq import RabbitMQ, RabbitMQArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.secrets import SharedSecrets, SharedSecretsArgs
from infra.components.service import FastApiService, FastApiServiceArgs
from infra.spec import PlatformSpec


def build_platform(spec: PlatformSpec) -> None:
    """Declare every resource of *spec*'s stack and export the stack outputs."""
    namespace = Namespace("platform", NamespaceArgs(spec=spec))
    in_ns = pulumi.ResourceOptions(depends_on=[namespace])
    secrets = SharedSecrets("shared", SharedSecretsArgs(spec=spec), in_ns)
    postgres = Postgres("postgres", PostgresArgs(spec=spec), in_ns)
    redis = Redis("redis", RedisArgs(spec=spec), in_ns)
    rabbitmq = RabbitMQ("rabbitmq", RabbitMQArgs(spec=spec), in_ns)
    images = {}
    for svc in spec.services:
        # The exact resources this service needs, not whole components: depending on a component
        # means depending on every child of it (O(services^2) edges, most of a large render's time).
        needs = [
            secrets.public_keys,
            *([secrets.jwt] if svc.manifest.issues_tokens else []),
            *(r for data in (postgres, redis, rabbitmq) for r in data.dependencies_for(svc)),
        ]
        service = FastApiService(
            svc.name,
            FastApiServiceArgs(
                spec=spec, service=svc, depends_on=needs, token_keys_checksum=secrets.keys_checksum
            ),
            in_ns,
        )
        images[svc.name] = service.image
    logging = Logging("logging", LoggingArgs(spec=spec), in_ns)
    Monitoring("monitoring", MonitoringArgs(spec=spec, loki_url=logging.loki_url), in_ns)
    gateway = Gateway("gateway", GatewayArgs(spec=spec), in_ns)
    pulumi.export("gateway_url", gateway.url)
    pulumi.export("namespace", namespace.name)
    pulumi.export("images", images)
