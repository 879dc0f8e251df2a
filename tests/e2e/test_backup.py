"""The postgres-backup CronJob's own script dumps the local PostgreSQL; a restore has identical rows."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from infra.components.postgres import SUPERUSER, backup_script
from infra.local.postgres_server import postgres_bin_dir

from .conftest import Platform, create_listing, new_account


def _psql(bin_dir: Path, port: int, password: str, database: str, sql: str) -> str:
    result = subprocess.run(
        [str(bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", database, "-c", sql],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "PGPASSWORD": password},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_backup_script_dump_restores_to_identical_rows(platform: Platform, tmp_path: Path) -> None:
    with platform.client() as client:
        owner = new_account(platform, client, "backup")
        for n in range(3):
            create_listing(platform, client, owner["token"], title=f"Backup item {n}")
    port = platform.ports["postgres"]
    password = json.loads((platform.state_dir / "secrets.json").read_text())["postgres"]
    bin_dir = postgres_bin_dir()
    secrets_dir, backups = tmp_path / "secrets", tmp_path / "backups"
    secrets_dir.mkdir()
    backups.mkdir()
    (secrets_dir / "superuser").write_text(password)
    # The CronJob talks to the in-cluster port; locally the same script targets the local one.
    script = backup_script(
        platform.spec, host="127.0.0.1", directory=str(backups), secrets_dir=str(secrets_dir), port=port
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    dumps = list(backups.glob("marketplace-*.dump"))
    assert len(dumps) == 1, sorted(p.name for p in backups.iterdir())
    assert not list(backups.glob("*.tmp"))

    fresh = f"restore_{uuid.uuid4().hex[:8]}"
    _psql(bin_dir, port, password, "postgres", f'CREATE DATABASE "{fresh}"')
    restore = subprocess.run(
        [str(bin_dir / "pg_restore"), "--no-owner", "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER,
         "-d", fresh, str(dumps[0])],
        capture_output=True, text=True, env={**env, "PGPASSWORD": password}, timeout=120, check=False,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    query = "COPY (SELECT * FROM listings ORDER BY id) TO STDOUT"
    original = _psql(bin_dir, port, password, "marketplace", query)
    restored = _psql(bin_dir, port, password, fresh, query)
    assert len(original.splitlines()) >= 3
    assert restored == original
    _psql(bin_dir, port, password, "postgres", f'DROP DATABASE "{fresh}"')
