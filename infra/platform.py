"""Wire every component of a stack together: ``build_platform(spec)`` is the whole Pulumi program."""

from __future__ import annotations

import pulumi

from infra.components.cluster import image_pull_secret, kubernetes_provider
from infra.components.gateway import Gateway, GatewayArgs
from infra.components.logs import Logging, LoggingArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.namespace import Namespace, NamespaceArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.rabbitmq import RabbitMQ, RabbitMQArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.secrets import SharedSecrets, SharedSecretsArgs
from infra.components.service import FastApiService, FastApiServiceArgs
from infra.components.webapp import WebApp, WebAppArgs
from infra.spec import PlatformSpec


def build_platform(spec: PlatformSpec) -> None:
    """Declare every resource of *spec*'s stack and export the stack outputs."""
    # Every Kubernetes resource goes through this provider (children inherit it from their component):
    # the stack's own cluster context, ConfigMaps and Secrets updated in place.
    provider = pulumi.ResourceOptions(providers=[kubernetes_provider(spec)])
    namespace = Namespace("platform", NamespaceArgs(spec=spec), provider)
    in_ns = pulumi.ResourceOptions.merge(provider, pulumi.ResourceOptions(depends_on=[namespace]))
    # Every pod pulls with it (when the stack names a registry user): created before any of them.
    pull = image_pull_secret(spec, in_ns)
    if pull is not None:
        in_ns = pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[pull.resource]))
    secrets = SharedSecrets("shared", SharedSecretsArgs(spec=spec), in_ns)
    postgres = Postgres("postgres", PostgresArgs(spec=spec), in_ns)
    redis = Redis("redis", RedisArgs(spec=spec), in_ns)
    rabbitmq = RabbitMQ("rabbitmq", RabbitMQArgs(spec=spec), in_ns)
    images = {}
    upstreams = []
    for svc in spec.services:
        # The exact resources this service needs, not whole components: depending on a component
        # means depending on every child of it (O(services^2) edges, most of a large render's time).
        data_stores = (postgres, redis, rabbitmq)
        service = FastApiService(
            svc.name,
            FastApiServiceArgs(
                spec=spec,
                service=svc,
                secrets=[
                    secrets.public_source,
                    secrets.signing_source,
                    *(s for data in data_stores for s in data.sources_for(svc)),
                ],
                depends_on=[r for data in data_stores for r in data.dependencies_for(svc)],
            ),
            in_ns,
        )
        images[svc.name] = service.image
        upstreams.append(service.service)
    for app in spec.web_apps:
        web = WebApp(app.name, WebAppArgs(spec=spec, app=app), in_ns)
        images[app.name] = web.image
        upstreams.append(web.service)
    logging = Logging("logging", LoggingArgs(spec=spec), in_ns)
    Monitoring("monitoring", MonitoringArgs(spec=spec, loki_url=logging.loki_url), in_ns)
    gateway = Gateway("gateway", GatewayArgs(spec=spec, upstreams=upstreams), in_ns)
    pulumi.export("gateway_url", gateway.url)
    pulumi.export("namespace", namespace.name)
    pulumi.export("images", images)
