"""servicekit.testing's own helpers and servicekit.migrations' messaging DDL, on real servers: each
check passes on what is right and fails on what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from servicekit.settings import Settings
from servicekit.testing import (
    Credentials,
    add_redis_user,
    alembic_upgrade,
    assert_migrations_roundtrip,
    assert_models_match_migrations,
    delete_redis_user,
    delete_vhost,
    import_platform_vhost,
    isolated_definitions,
    migration_diff,
    scratch_database,
    settings_for,
)

from .conftest import CONSUMER, build_spec

SERVICE = "sk-migrations"
MESSAGING = {"outbox", "processed_messages"}
ENV = """
import sqlalchemy as sa
from servicekit.messaging.tables import add_messaging_tables
from servicekit.migrations import run_migrations

CONVENTION = {{"pk": "pk_%(table_name)s", "uq": "uq_%(table_name)s_%(column_0_name)s"}}
metadata = sa.MetaData(naming_convention=CONVENTION if {named} else None)
add_messaging_tables(metadata)
run_migrations(metadata)
"""
REVISION = """
from alembic import op
from servicekit.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables(op, named={named})


def downgrade() -> None:
    drop_messaging_tables(op, processed={drop_processed})
"""


def write_migrations(root: Path, *, named: bool, extra: str = "", drop_processed: bool = True) -> Path:
    """A service's migrations folder whose revision uses create/drop_messaging_tables; its alembic.ini."""
    (root / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    (root / "env.py").write_text(ENV.format(named=named))
    (root / "versions" / "0001_messaging.py").write_text(
        REVISION.format(named=named, drop_processed=drop_processed)
    )
    return root / "alembic.ini"


async def constraints(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid::regclass::text IN ('outbox', 'processed_messages')"
        )
    finally:
        await conn.close()
    return {row["conname"] for row in rows}


@pytest.mark.parametrize(
    ("named", "names"),
    [
        (False, {"outbox_pkey", "outbox_event_id_key", "processed_messages_pkey"}),
        (True, {"pk_outbox", "uq_outbox_event_id", "pk_processed_messages"}),
    ],
)
async def test_messaging_ddl_is_servicekit_tables_with_the_chosen_constraint_names(
    postgres_server: Any, tmp_path: Path, named: bool, names: set[str]
) -> None:
    ini = write_migrations(tmp_path, named=named)
    await assert_migrations_roundtrip(postgres_server, ini, Settings, MESSAGING, service=SERVICE)
    await assert_models_match_migrations(postgres_server, ini, Settings, _metadata(named), service=SERVICE)
    async with scratch_database(postgres_server) as db:
        await alembic_upgrade(ini, settings_for(Settings, SERVICE, database=db))
        assert await constraints(db.url) == names


def _metadata(named: bool) -> Any:
    import sqlalchemy as sa
    from servicekit.messaging.tables import add_messaging_tables

    convention = {"pk": "pk_%(table_name)s", "uq": "uq_%(table_name)s_%(column_0_name)s"}
    metadata = sa.MetaData(naming_convention=convention) if named else sa.MetaData()
    add_messaging_tables(metadata)
    return metadata


async def test_models_check_fails_when_a_model_has_no_migration(postgres_server: Any, tmp_path: Path) -> None:
    ini = write_migrations(tmp_path, named=False)
    metadata = _metadata(False)
    import sqlalchemy as sa

    sa.Table("unmigrated", metadata, sa.Column("id", sa.Integer, primary_key=True))
    diff = await migration_diff(postgres_server, ini, Settings, metadata, service=SERVICE)
    assert [entry[0] for entry in diff] == ["add_table"]
    with pytest.raises(AssertionError, match="unmigrated"):
        await assert_models_match_migrations(postgres_server, ini, Settings, metadata, service=SERVICE)


async def test_roundtrip_fails_on_wrong_tables_or_an_incomplete_downgrade(
    postgres_server: Any, tmp_path: Path
) -> None:
    ini = write_migrations(tmp_path / "ok", named=False)
    with pytest.raises(AssertionError, match="upgrade head"):
        await assert_migrations_roundtrip(postgres_server, ini, Settings, {"outbox"}, service=SERVICE)
    leaky = write_migrations(tmp_path / "leaky", named=False, drop_processed=False)
    with pytest.raises(AssertionError, match="downgrade base"):
        await assert_migrations_roundtrip(postgres_server, leaky, Settings, MESSAGING, service=SERVICE)


def test_isolated_definitions_keep_rename_and_move_without_touching_the_input() -> None:
    definitions = {
        "users": [{"name": "a-svc", "password_hash": "h1"}, {"name": "b-svc", "password_hash": "h2"}],
        "vhosts": [{"name": "market"}],
        "permissions": [{"user": "a-svc", "vhost": "market"}, {"user": "b-svc", "vhost": "market"}],
        "topic_permissions": [{"user": "b-svc", "vhost": "market", "exchange": "events"}],
        "exchanges": [{"name": "events", "vhost": "market"}],
        "queues": [{"name": "b-svc.events", "vhost": "market"}],
        "bindings": [{"source": "events", "vhost": "market"}],
    }
    before = repr(definitions)
    defs, users = isolated_definitions(
        definitions, {"a-svc": "pa", "b-svc": "pb"}, vhost="v1", suffix="-t", keep=["b-svc"]
    )
    assert repr(definitions) == before
    assert users == {"b-svc": ("b-svc-t", "pb")}
    assert defs["users"] == [{"name": "b-svc-t", "password_hash": "h2"}]
    assert defs["vhosts"] == [{"name": "v1"}]
    assert defs["permissions"] == [{"user": "b-svc-t", "vhost": "v1"}]
    assert defs["topic_permissions"] == [{"user": "b-svc-t", "vhost": "v1", "exchange": "events"}]
    assert {item["vhost"] for key in ("exchanges", "queues", "bindings") for item in defs[key]} == {"v1"}
    with pytest.raises(ValueError, match="c-svc"):
        isolated_definitions(definitions, {"a-svc": "pa"}, vhost="v1", keep=["c-svc"])


def _login(server: Any, creds: Credentials) -> redis.Redis:
    login = {"username": creds.user, "password": creds.password}
    return redis.Redis(host=server.host, port=server.port, retry=Retry(NoBackoff(), 0), **login)


def test_redis_user_reaches_only_its_prefix_until_deleted(redis_server: Any) -> None:
    creds = add_redis_user(redis_server, "sk-acl")
    client = redis.Redis(
        host=redis_server.host, port=redis_server.port, username=creds.user, password=creds.password
    )
    try:
        client.set("sk-acl:key", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other-svc:key", "1")
    finally:
        client.close()
    delete_redis_user(redis_server, creds.user)
    gone = redis.Redis(
        host=redis_server.host, port=redis_server.port, username=creds.user, password=creds.password
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        gone.ping()
    gone.close()


async def test_platform_vhost_holds_only_the_kept_users_with_their_permissions(
    rabbitmq_server: Any,
) -> None:
    spec = build_spec([150])
    isolated = await import_platform_vhost(rabbitmq_server, spec, keep=[CONSUMER], prefix="sk-iso")
    try:
        login = isolated.users[CONSUMER]
        assert set(isolated.users) == {CONSUMER}
        assert login.user.startswith(f"{CONSUMER}-")
        base = f"http://{rabbitmq_server.host}:{rabbitmq_server.management_port}/api"
        auth = (rabbitmq_server.user, rabbitmq_server.password)
        async with httpx.AsyncClient(auth=auth, timeout=10) as http:
            permissions = (await http.get(f"{base}/vhosts/{isolated.vhost}/permissions")).json()
        assert {p["user"] for p in permissions} == {login.user, rabbitmq_server.user}
        url = rabbitmq_server.url(isolated.vhost, login.user, login.password)
        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(f"{CONSUMER}.events", passive=True)  # its own queue exists
    finally:
        await delete_vhost(rabbitmq_server, isolated.vhost, [c.user for c in isolated.users.values()])
