"""Names and labels derived from a service name stay within Kubernetes' limits."""

from __future__ import annotations

from infra.check.integrity import check_integrity
from infra.components import kube
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.rabbitmq import RabbitMQ, RabbitMQArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.service import FastApiService, FastApiServiceArgs
from infra.spec import MAX_SERVICE_NAME, STACKS, PlatformSpec


def test_longest_allowed_service_name_gives_valid_names_and_labels(run_mocked) -> None:
    name = "s" * MAX_SERVICE_NAME
    stack = max(STACKS, key=len)

    def program(spec: PlatformSpec) -> None:
        svc = spec.service("marketplace-svc")  # needs postgres, redis and rabbitmq: every derived object
        svc = svc.model_copy(update={"manifest": svc.manifest.model_copy(update={"name": name})})
        spec = spec.model_copy(update={"services": (svc,)})
        stores = (Postgres("pg", PostgresArgs(spec=spec)), Redis("redis", RedisArgs(spec=spec)))
        stores += (RabbitMQ("mq", RabbitMQArgs(spec=spec)),)
        secrets = [
            kube.Source("Secret", "jwt-public-keys", "test"),
            *(s for d in stores for s in d.sources_for(svc)),
        ]
        FastApiService(
            name,
            FastApiServiceArgs(spec=spec, service=svc, image="registry.example.com/s:1", secrets=secrets),
        )

    manifests = run_mocked(stack, program).manifests
    assert any(m["metadata"]["name"] == f"{name}-migrate" for m in manifests)
    findings = [f for f in check_integrity(manifests).findings if f.message.startswith("label ")]
    assert findings == []
    assert max(len(m["metadata"]["name"]) for m in manifests) <= 63
    # checksum/<object name> annotations: the name part of an annotation key is at most 63 characters
    keys = [
        k
        for m in manifests
        for k in (m.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {})
    ]
    assert keys
    assert max(len(k.split("/", 1)[1]) for k in keys) <= 63
