"""Provision a service for a test the way the platform does: its own database (migrated), its own
Redis ACL user and its own RabbitMQ user on an isolated vhost; settings that log in as them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from servicekit.settings import Settings
from servicekit.testing.app import TEST_SIGNING_KEY, settings_for
from servicekit.testing.backends import (
    IsolatedVhost,
    add_redis_user,
    delete_redis_user,
    delete_vhost,
    import_platform_vhost,
)
from servicekit.testing.database import Database, create_database, drop_database
from servicekit.testing.migrations import alembic_upgrade

S = TypeVar("S", bound=Settings)


@dataclass(frozen=True)
class Provisioned(Generic[S]):
    """A provisioned service: its settings, its database and its Redis user (None where not needed)."""

    settings: S
    database: Database | None
    redis_user: str | None


@asynccontextmanager
async def provisioned(
    cls: type[S],
    service: str,
    *,
    postgres: Any = None,
    alembic_ini: Path | None = None,
    database_name: str | None = None,
    redis: Any = None,
    redis_db: int = 0,
    rabbitmq: Any = None,
    broker: IsolatedVhost | None = None,
    **overrides: Any,
) -> AsyncIterator[Provisioned[S]]:
    """*service* on the test servers: a fresh database on *postgres* (when given; upgraded to head
    with *alembic_ini* when given), an ACL user on *redis* limited to ``<service>:*`` (when given) and
    *service*'s user in *broker* (an :func:`~servicekit.testing.import_platform_vhost` result) on
    *rabbitmq*. Settings are :func:`settings_for` these plus *overrides*. The database and the Redis
    user are removed when the block exits."""
    database = await create_database(postgres, database_name) if postgres is not None else None
    redis_login = None
    try:
        values: dict[str, Any] = {}
        if redis is not None:
            redis_login = add_redis_user(redis, service)
            values |= {"redis_user": redis_login.user, "redis_password": redis_login.password}
        if broker is not None:
            login = broker.users[service]
            values |= {
                "rabbitmq_vhost": broker.vhost,
                "rabbitmq_user": login.user,
                "rabbitmq_password": login.password,
            }
        settings = settings_for(
            cls,
            service,
            database=database,
            redis=redis,
            redis_db=redis_db,
            rabbitmq=rabbitmq,
            **(values | overrides),
        )
        if database is not None and alembic_ini is not None:
            await alembic_upgrade(alembic_ini, settings)
        yield Provisioned(settings, database, redis_login.user if redis_login else None)
    finally:
        if database is not None:
            await drop_database(postgres, database)
        if redis_login is not None:
            delete_redis_user(redis, redis_login.user)


@asynccontextmanager
async def provisioned_from_spec(
    spec: Any,
    cls: type[S],
    service: str,
    *,
    postgres: Any = None,
    redis: Any = None,
    rabbitmq: Any = None,
    broker: IsolatedVhost | None = None,
    alembic_ini: Path | None = None,
    **overrides: Any,
) -> AsyncIterator[Provisioned[S]]:
    """:func:`provisioned` with what *spec* (an ``infra.spec.PlatformSpec``, duck-typed) says
    *service* needs: a database, a Redis ACL user on the manifest's ``db``, a RabbitMQ user with the
    stack's retry delays. Without *broker*, the service gets its own :func:`import_platform_vhost`
    (deleted afterwards). Servers the service does not need are not touched. The manifest's
    ``secrets`` get random values; the token issuer (``issues_tokens``) gets the test signing key."""
    manifest = spec.service(service).manifest
    need = manifest.needs
    generated: dict[str, Any] = {name.lower(): secrets.token_urlsafe(32) for name in manifest.secrets}
    if manifest.issues_tokens:
        generated["jwt_signing_key"] = TEST_SIGNING_KEY
    own_vhost = None
    if need.rabbitmq is not None and broker is None:
        own_vhost = broker = await import_platform_vhost(rabbitmq, spec, keep=[service], prefix=service)
    delays = {"rabbitmq_retry_delays_ms": list(spec.config.rabbitmq.retry_delays_ms)}
    try:
        async with provisioned(
            cls,
            service,
            postgres=postgres if need.postgres is not None else None,
            alembic_ini=alembic_ini,
            redis=redis if need.redis is not None else None,
            redis_db=need.redis.db if need.redis is not None else 0,
            rabbitmq=rabbitmq if need.rabbitmq is not None else None,
            broker=broker if need.rabbitmq is not None else None,
            **((delays if need.rabbitmq is not None else {}) | generated | overrides),
        ) as result:
            yield result
    finally:
        if own_vhost is not None:
            users = [login.user for login in own_vhost.users.values()]
            await delete_vhost(rabbitmq, own_vhost.vhost, users)
