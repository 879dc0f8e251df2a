"""Every generated credential of a stack, by name, and its rotation generation (``platform:rotation``).

A credential is named ``<owner>/<user>`` (``postgres/auth-svc``, ``redis/exporter``), ``jwt/<key>``
for a token-signing key of ``platform:tokens`` (rotate those without downtime by adding a key instead:
docs/deploy.md), or ``<service>/<KEY>`` for a key a service's manifest declares under ``secrets``.
Raising its generation in the stack file replaces its ``RandomPassword`` (``keepers``) and changes the
version of every Secret that holds it, so everything that reads the credential at boot rolls or re-runs
(docs/deploy.md, "Rotating a password").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.spec import PlatformSpec


def jwt_key(name: str) -> str:
    """The credential of token-signing key *name* (``platform:tokens.keys``)."""
    return f"jwt/{name}"


def service_key(service: str, key: str) -> str:
    """The credential of a key a service's manifest declares under ``secrets``."""
    return f"{service}/{key}"


def credential_names(spec: PlatformSpec) -> list[str]:
    """Every credential the stack generates, in a fixed order."""
    from infra.render.rabbitmq import ADMIN_USER as RABBITMQ_ADMIN
    from infra.render.redis import redis_users

    names = [jwt_key(key) for key in spec.config.tokens.keys]
    names += ["postgres/superuser", "postgres/exporter"]
    names += [f"postgres/{s.name}" for s in spec.services if s.manifest.needs.postgres]
    names += [f"redis/{user}" for user in redis_users(spec)]
    names += [f"rabbitmq/{RABBITMQ_ADMIN}"]
    names += [f"rabbitmq/{s.name}" for s in spec.services if s.manifest.needs.rabbitmq]
    names += [service_key(s.name, key) for s in spec.services for key in s.manifest.secrets]
    names += ["grafana/admin", "alertmanager/webhook-token"]
    return names


def generation(spec: PlatformSpec, credential: str) -> int:
    """The rotation generation of *credential* (0 until it is first rotated)."""
    return spec.config.rotation.get(credential, 0)


def keepers(spec: PlatformSpec, credential: str) -> dict[str, str] | None:
    """``RandomPassword`` keepers: None until the first rotation, so a never-rotated password keeps
    the inputs it was created with."""
    gen = generation(spec, credential)
    return {"generation": str(gen)} if gen else None


def version(spec: PlatformSpec, *credentials: str) -> str:
    """A non-secret token that changes whenever one of *credentials* is rotated."""
    return ",".join(f"{name}={generation(spec, name)}" for name in credentials)
