"""PostgresServer: real queries, password auth, restart and crash durability, kill, start failures."""

from __future__ import annotations

import os
import pwd
import socket

import asyncpg
import pytest

from infra.local.process import ServerError, pid_alive


async def test_shared_server_answers_select_with_password(postgres_server):
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_wrong_password_is_rejected(postgres_server):
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.dsn(password="not-the-password"))


async def test_postgres_database_is_owned_by_its_own_role(postgres_database):
    db = postgres_database("orders")
    conn = await asyncpg.connect(db.dsn)
    try:
        row = await conn.fetchrow("SELECT current_database() AS db, current_user AS usr")
        await conn.execute("CREATE TABLE t (id int)")
    finally:
        await conn.close()
    assert (row["db"], row["usr"]) == (db.name, db.owner)
    assert db.async_dsn.startswith("postgresql+asyncpg://")


def test_create_database_is_idempotent_and_resets_password(postgres_server):
    postgres_server.create_database("idem_db", "idem-owner", "first")
    dsn = postgres_server.create_database("idem_db", "idem-owner", "it's\\second")
    try:
        out = postgres_server.psql("SELECT current_user", "idem_db", "idem-owner", "it's\\second")
        assert out.strip() == "idem-owner"
        assert "idem-owner" in dsn
    finally:
        postgres_server.drop_database("idem_db")
        postgres_server.psql('DROP ROLE "idem-owner";')


def test_server_runs_as_postgres_user_when_root(postgres_server):
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    pids = postgres_server.pids()
    assert pids
    assert {os.stat(f"/proc/{pid}").st_uid for pid in pids} == {expected}


def test_restart_keeps_port_and_rows(server_factory):
    pg = server_factory.postgres()
    port = pg.port
    pg.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives');")
    pg.restart()
    assert pg.port == port
    assert pg.psql("SELECT v FROM kept").strip() == "survives"


def test_kill_leaves_no_process_and_data_survives_the_crash(server_factory):
    pg = server_factory.postgres()
    pg.psql("CREATE TABLE crash (v int); INSERT INTO crash VALUES (42);")
    seen = pg.seen_pids()
    assert len(seen) > 1  # postmaster and its background workers
    pg.kill()
    assert not pg.is_running()
    assert [pid for pid in seen if pid_alive(pid)] == []
    pg.start()
    assert pg.psql("SELECT v FROM crash").strip() == "42"


def test_port_taken_fails_with_log_tail(server_factory):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        pg = server_factory.postgres(start=False, port=port)
        with pytest.raises(ServerError) as info:
            pg.start()
    err = info.value
    assert f"127.0.0.1:{port} is already in use" in err.message
    assert "could not bind" in err.log_tail
    assert "--- log tail ---" in str(err)
    assert pg.alive_pids() == set()
