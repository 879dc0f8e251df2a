"""pytest helpers for services: settings from the session's real servers, a fresh database, Alembic
and its standard checks, least-privilege Redis/RabbitMQ users, an httpx client over ASGITransport
with the app's lifespan running, and the contract tests every app passes.

The server objects come from the repo's fixtures (``postgres_server``, ``redis_server``,
``rabbitmq_server``); only their connection attributes are used (duck typing, no infra import)::

    db = await create_database(postgres_server, "marketplace_test")
    settings = settings_for(MarketSettings, "marketplace-svc", database=db, redis=redis_server,
                            rabbitmq=rabbitmq_server)
    await alembic_upgrade(SERVICE_DIR / "migrations" / "alembic.ini", settings)
    async with app_client(create_app_for(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
"""

from servicekit.testing.app import (
    TEST_PUBLIC_KEYS,
    TEST_SIGNING_KEY,
    app_client,
    bearer,
    issue_test_token,
    settings_for,
)
from servicekit.testing.backends import (
    Credentials,
    IsolatedVhost,
    add_redis_user,
    create_topology_vhost,
    delete_redis_user,
    delete_vhost,
    import_platform_vhost,
    isolated_definitions,
    platform_definitions,
)
from servicekit.testing.contracts import OperationalContract, RoutePrefixContract
from servicekit.testing.database import (
    Database,
    create_database,
    drop_database,
    public_tables,
    scratch_database,
)
from servicekit.testing.migrations import (
    alembic_downgrade,
    alembic_upgrade,
    assert_migrations_roundtrip,
    assert_models_match_migrations,
    migration_diff,
)
from servicekit.testing.provision import Provisioned, provisioned, provisioned_from_spec

__all__ = [
    "TEST_PUBLIC_KEYS",
    "TEST_SIGNING_KEY",
    "Credentials",
    "Database",
    "IsolatedVhost",
    "OperationalContract",
    "Provisioned",
    "RoutePrefixContract",
    "add_redis_user",
    "alembic_downgrade",
    "alembic_upgrade",
    "app_client",
    "assert_migrations_roundtrip",
    "assert_models_match_migrations",
    "bearer",
    "create_database",
    "create_topology_vhost",
    "delete_redis_user",
    "delete_vhost",
    "drop_database",
    "import_platform_vhost",
    "isolated_definitions",
    "issue_test_token",
    "migration_diff",
    "platform_definitions",
    "provisioned",
    "provisioned_from_spec",
    "public_tables",
    "scratch_database",
    "settings_for",
]
