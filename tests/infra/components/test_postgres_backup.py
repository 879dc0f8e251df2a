"""The postgres-backup CronJob's script, run against a real PostgreSQL on its own port."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

from infra.components.postgres import backup_script
from infra.local.postgres_server import postgres_bin_dir
from infra.spec import PlatformSpec, PostgresNeed, load_spec

DAY = 24 * 3600


def _spec_with_database(database: str) -> PlatformSpec:
    """The dev spec with one service that owns *database*."""
    spec = load_spec("dev")
    svc = spec.service("marketplace-svc")
    needs = svc.manifest.needs.model_copy(update={"postgres": PostgresNeed(database=database)})
    svc = svc.model_copy(update={"manifest": svc.manifest.model_copy(update={"needs": needs})})
    return spec.model_copy(update={"services": (svc,)})


def _file(path: Path, days_old: float) -> Path:
    """Create *path* with a modification time *days_old* days ago."""
    path.write_bytes(b"partial")
    stamp = time.time() - days_old * DAY
    os.utime(path, (stamp, stamp))
    return path


def test_backup_prunes_expired_dumps_and_failed_tmp_files(postgres_server, tmp_path: Path) -> None:
    database = f"backup_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(database, database, "pw-backup-test")
    try:
        spec = _spec_with_database(database)
        retention = spec.config.postgres.backup.retention_days
        secrets, backups = tmp_path / "secrets", tmp_path / "backups"
        secrets.mkdir()
        backups.mkdir()
        (secrets / "superuser").write_text(postgres_server.password)
        expired_dump = _file(backups / f"{database}-old.dump", retention + 1)
        failed_tmp = _file(backups / f"{database}-failed.dump.tmp", retention + 1)
        running_tmp = _file(backups / f"{database}-running.dump.tmp", 0.01)  # a run in progress
        script = backup_script(
            spec,
            host=postgres_server.host,
            directory=str(backups),
            secrets_dir=str(secrets),
            port=postgres_server.port,
        )
        env = {**os.environ, "PATH": f"{postgres_bin_dir()}:{os.environ['PATH']}"}
        run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0, run.stderr
        left = sorted(p.name for p in backups.iterdir())
        assert len([n for n in left if n.endswith(".dump")]) == 1, left  # today's dump
        assert expired_dump.name not in left
        assert failed_tmp.name not in left
        assert running_tmp.name in left
    finally:
        postgres_server.drop_database(database)
