"""The postgres container's postStart hook sets the superuser's password from its mounted file (the image
applies POSTGRES_PASSWORD_FILE only when it initialises an empty data directory). Run against a real
PostgreSQL, with a throwaway role standing in for the superuser."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from infra.components.postgres import superuser_sync_script


def _login(server, role: str, password: str) -> bool:
    result = subprocess.run(
        ["psql", "-h", server.host, "-p", str(server.port), "-U", role, "-d", "postgres", "-tAc", "SELECT 1"],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "1"


def test_the_hook_sets_the_password_from_the_file(postgres_server, tmp_path: Path) -> None:
    role = f"sync_{secrets.token_hex(4)}"
    old, new = secrets.token_urlsafe(16), secrets.token_hex(16)
    postgres_server.psql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{old}'")
    try:
        (tmp_path / "superuser").write_text(new)
        script = superuser_sync_script(
            socket_dir=str(postgres_server.socket_dir),
            port=postgres_server.port,
            secrets_dir=str(tmp_path),
            role=role,
        )
        # The image trusts the local socket; this server asks for the (old) password instead.
        result = subprocess.run(
            ["/bin/sh", "-c", script],
            env={**os.environ, "PGPASSWORD": old},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert new not in script
        assert _login(postgres_server, role, new)
        assert not _login(postgres_server, role, old)
    finally:
        postgres_server.psql(f"DROP ROLE IF EXISTS {role}")
