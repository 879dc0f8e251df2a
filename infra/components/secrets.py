"""Secrets shared by the services: the token keys (``jwt-signing``, ``jwt-public-keys``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import labels as lbl
from infra.components import kube
from infra.spec import PlatformSpec
from infra.token_keys import PUBLIC_KEYS_FILE, SIGNING_KEY_FILE, public_keys_document

#: Secret holding the issuer's ``JWT_SIGNING_KEY`` (mounted by the ``issues_tokens`` service only).
JWT_SIGNING_SECRET = "jwt-signing"
#: Secret holding ``JWT_PUBLIC_KEYS`` (mounted by every service).
JWT_PUBLIC_SECRET = "jwt-public-keys"


@dataclass(frozen=True)
class SharedSecretsArgs:
    """Inputs of :class:`SharedSecrets`."""

    spec: PlatformSpec
    #: Length of each generated key secret ([A-Za-z0-9]; its SHA-256 is the Ed25519 private key).
    key_length: int = 64


class SharedSecrets(pulumi.ComponentResource):
    """One random secret per ``platform:tokens.keys`` name (kept in the stack's state); Secret
    ``jwt-signing`` holds the ``signingKey``'s, Secret ``jwt-public-keys`` the JWK Set of all of them.

    Rotation: a name added to ``keys`` is published to every service first; it signs only once it is
    made the ``signingKey`` (a later deploy). ``keys_checksum`` changes with either, so the pods that
    read them at boot roll.
    """

    def __init__(
        self, name: str, args: SharedSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:security:SharedSecrets", name, None, opts)
        spec = args.spec
        tokens = spec.config.tokens
        child = kube.child(self)
        keys = {
            key: random.RandomPassword(
                f"{name}-jwt-key-{key}", length=args.key_length, special=False, opts=child
            )
            for key in tokens.keys
        }
        labels = lbl.labels("platform", spec.stack, "platform")
        self.jwt = k8s.core.v1.Secret(
            f"{name}-jwt",
            metadata=kube.meta(JWT_SIGNING_SECRET, spec, labels),
            type="Opaque",
            string_data={SIGNING_KEY_FILE: keys[tokens.signing_key].result},
            opts=child,
        )
        document = pulumi.Output.all(*(keys[key].result for key in tokens.keys)).apply(
            lambda secrets: public_keys_document(list(secrets))
        )
        self.public_keys = k8s.core.v1.Secret(
            f"{name}-jwt-public-keys",
            metadata=kube.meta(JWT_PUBLIC_SECRET, spec, labels),
            type="Opaque",
            string_data={PUBLIC_KEYS_FILE: document},
            opts=child,
        )
        #: Public: a digest of the published keys and of which one signs (for pod-template checksums).
        self.keys_checksum = pulumi.Output.unsecret(
            document.apply(lambda text: hashlib.sha256(f"{text}\n{tokens.signing_key}".encode()).hexdigest())
        )
        self.register_outputs(
            {"jwt_signing": self.jwt.metadata.name, "jwt_public_keys": self.public_keys.metadata.name}
        )
