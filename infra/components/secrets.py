"""Secrets shared by every service: the JWT signing key (``jwt-signing``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import credentials
from infra import labels as lbl
from infra.components import kube
from infra.components.service import JWT_SECRET_NAME
from infra.spec import PlatformSpec


@dataclass(frozen=True)
class SharedSecretsArgs:
    """Inputs of :class:`SharedSecrets`."""

    spec: PlatformSpec
    #: Length of the generated HS256 key (64 characters = 384 bits of [A-Za-z0-9]).
    jwt_key_length: int = 64


class SharedSecrets(pulumi.ComponentResource):
    """A random HS256 key in Secret ``jwt-signing`` (key ``JWT_SECRET``)."""

    def __init__(
        self, name: str, args: SharedSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:security:SharedSecrets", name, None, opts)
        spec = args.spec
        child = kube.child(self)
        key = kube.password(spec, credentials.JWT, f"{name}-jwt-key", child, args.jwt_key_length)
        self.jwt_source = kube.secret(
            f"{name}-jwt",
            JWT_SECRET_NAME,
            spec,
            lbl.labels("platform", spec.stack, "platform"),
            {"JWT_SECRET": key.result},
            version=credentials.version(spec, credentials.JWT),
            opts=child,
        )
        self.jwt = self.jwt_source.resource
        self.register_outputs({"jwt_secret": JWT_SECRET_NAME})
