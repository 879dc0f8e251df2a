"""Token keys in the rendered stack (issue 11, item 6): only the issuer mounts the signing key, every
service mounts the public keys, a rotation publishes two keys and rolls the pods; payment-svc's
fingerprint key is its own."""

from __future__ import annotations

import json

import pytest
from servicekit.keys import load_key_set, load_signing_key

from infra.components.postgres import Postgres, PostgresArgs
from infra.components.rabbitmq import RabbitMQ, RabbitMQArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.secrets import SharedSecrets, SharedSecretsArgs
from infra.components.service import FastApiService, FastApiServiceArgs
from infra.offline import render, render_stack
from infra.spec import REPO_ROOT, SpecError, config_from_stack_file, load_spec, stack_file
from infra.token_keys import public_jwk, public_keys_document
from tests.infra.components.conftest import find


def _mounted_secrets(manifests: list[dict], kind: str, name: str) -> set[str]:
    pod = find(manifests, kind, name)["spec"]["template"]["spec"]
    return {
        source["secret"]["name"]
        for volume in pod["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
    }


@pytest.fixture(scope="module")
def prod() -> list[dict]:
    return render_stack("prod")


def test_only_the_issuer_mounts_the_signing_key(prod: list[dict]) -> None:
    issuer = load_spec("prod").token_issuer
    assert issuer is not None
    assert issuer.name == "auth-svc"
    for svc in load_spec("prod").services:
        mounted = _mounted_secrets(prod, "Deployment", svc.name)
        assert "jwt-public-keys" in mounted
        assert ("jwt-signing" in mounted) == (svc.name == issuer.name), svc.name
        if svc.manifest.needs.postgres:  # only a service with a database has a migration Job
            assert not {"jwt-signing", "jwt-public-keys"} & _mounted_secrets(
                prod, "Job", f"{svc.name}-migrate"
            )


def test_payment_svc_alone_mounts_its_fingerprint_key(prod: list[dict]) -> None:
    keys = find(prod, "Secret", "payment-svc-keys")
    assert set(keys["stringData"]) == {"FINGERPRINT_KEY"}
    holders = [
        s.name
        for s in load_spec("prod").services
        if "payment-svc-keys" in _mounted_secrets(prod, "Deployment", s.name)
    ]
    assert holders == ["payment-svc"]


def test_a_rotation_publishes_both_keys_and_rolls_every_pod() -> None:
    config = config_from_stack_file(stack_file(REPO_ROOT, "dev"))

    def checksum(tokens: dict) -> str:
        spec = load_spec("dev", config={**config, "tokens": tokens})

        def program() -> None:
            keys = SharedSecrets("shared", SharedSecretsArgs(spec=spec))
            svc = spec.service("marketplace-svc")
            stores = (Postgres("pg", PostgresArgs(spec=spec)), Redis("redis", RedisArgs(spec=spec)))
            stores += (RabbitMQ("mq", RabbitMQArgs(spec=spec)),)
            sources = [keys.public_source, *(s for d in stores for s in d.sources_for(svc))]
            FastApiService(svc.name, FastApiServiceArgs(spec=spec, service=svc, secrets=sources))

        deployment = find(render("dev", program=program).manifests, "Deployment", "marketplace-svc")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/jwt-public-keys"]

    before = checksum({"keys": ["initial"], "signingKey": "initial"})
    published = checksum({"keys": ["initial", "next"], "signingKey": "initial"})
    signing = checksum({"keys": ["initial", "next"], "signingKey": "next"})
    assert len({before, published, signing}) == 3


def test_signing_with_a_key_that_is_not_published_is_a_spec_error() -> None:
    config = {
        "environment": "dev",
        "namespace": "x",
        "domain": "x.example.com",
        "registry": "r.example.com/x",
    }
    with pytest.raises(SpecError, match="signingKey 'next' is not one of keys"):
        load_spec("dev", config={**config, "tokens": {"keys": ["initial"], "signingKey": "next"}})


def test_infra_derives_the_keys_servicekit_signs_and_verifies_with() -> None:
    secrets = ["a-generated-stack-secret-" + "x" * 40, "another-generated-secret-" + "y" * 40]
    for secret in secrets:
        assert public_jwk(secret) == load_signing_key(secret).jwk
    key_set = load_key_set(public_keys_document(secrets))
    assert list(key_set.keys) == [load_signing_key(s).kid for s in secrets]
    assert json.loads(public_keys_document(secrets)) == key_set.document
