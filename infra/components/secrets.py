"""Secrets shared by the services: the token keys (``jwt-signing``, ``jwt-public-keys``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import credentials
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
    made the ``signingKey`` (a later deploy). Each Secret's content version names its keys, the signing
    key and their rotation generations, so the pods that read them at boot roll on either step
    (:func:`kube.secret`), without a secret value in any annotation.
    """

    def __init__(
        self, name: str, args: SharedSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:security:SharedSecrets", name, None, opts)
        spec = args.spec
        tokens = spec.config.tokens
        child = kube.child(self)
        keys = {
            key: kube.password(
                spec, credentials.jwt_key(key), f"{name}-jwt-key-{key}", child, args.key_length
            )
            for key in tokens.keys
        }
        labels = lbl.labels("platform", spec.stack, "platform")
        signing = credentials.jwt_key(tokens.signing_key)
        self.signing_source = kube.secret(
            f"{name}-jwt",
            JWT_SIGNING_SECRET,
            spec,
            labels,
            {SIGNING_KEY_FILE: keys[tokens.signing_key].result},
            version=f"signing={tokens.signing_key};{credentials.version(spec, signing)}",
            opts=child,
        )
        document = pulumi.Output.all(*(keys[key].result for key in tokens.keys)).apply(
            lambda secrets: public_keys_document(list(secrets))
        )
        published = [credentials.jwt_key(key) for key in tokens.keys]
        self.public_source = kube.secret(
            f"{name}-jwt-public-keys",
            JWT_PUBLIC_SECRET,
            spec,
            labels,
            {PUBLIC_KEYS_FILE: document},
            # The signing key is part of it: services learn which key signs only by its kid, but a
            # switch must roll them too, so they drop cached verifiers of a retired key.
            version=f"keys={','.join(tokens.keys)};signing={tokens.signing_key};"
            f"{credentials.version(spec, *published)}",
            opts=child,
        )
        self.jwt = self.signing_source.resource
        self.public_keys = self.public_source.resource
        self.register_outputs({"jwt_signing": JWT_SIGNING_SECRET, "jwt_public_keys": JWT_PUBLIC_SECRET})
