"""Secrets shared by every service: the JWT signing key (``jwt-signing``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

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
        key = random.RandomPassword(f"{name}-jwt-key", length=args.jwt_key_length, special=False, opts=child)
        self.jwt = k8s.core.v1.Secret(
            f"{name}-jwt",
            metadata=kube.meta(JWT_SECRET_NAME, spec, lbl.labels("platform", spec.stack, "platform")),
            type="Opaque",
            string_data={"JWT_SECRET": key.result},
            opts=child,
        )
        self.register_outputs({"jwt_secret": self.jwt.metadata.name})
