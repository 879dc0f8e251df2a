"""Generate the web app's typed API client from the services' own apps (no server needed).

For each service, the app factory builds the app with placeholder settings and ``app.openapi()``
gives its document; it is written to ``frontend/lib/api/generated/<service>.json`` and
openapi-typescript turns it into ``<service>.d.ts`` (the types openapi-fetch uses at run time).
Regenerate with ``python -m infra.api_client``; ``--check`` exits 1 when a committed file is stale
(the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.errors import PlatformError
from infra.spec import REPO_ROOT

FRONTEND = REPO_ROOT / "frontend"
OUT = Path("frontend/lib/api/generated")


def services(root: Path = REPO_ROOT) -> list[str]:
    """The services the web app uses (its manifest's ``apis``), by name; every service with a
    manifest when there is no web app."""
    from infra.spec import WEB_APP_DIRS, load_web_manifest

    for folder in WEB_APP_DIRS:
        manifest = root / folder / "service.yaml"
        if manifest.is_file():
            return sorted(load_web_manifest(manifest).apis)
    return sorted(p.parent.name for p in (root / "services").glob("*/service.yaml"))


def _placeholder_settings(package: str, service: str) -> Any:
    """The service's Settings with fresh throwaway keys: building the app needs them, the document
    does not depend on them."""
    from servicekit.keys import jwks, load_signing_key

    config = importlib.import_module(f"{package}.core.config")
    secret = secrets.token_urlsafe(48)
    public = json.dumps(jwks(load_signing_key(secret)))
    fields = config.Settings.model_fields
    extra = {"fingerprint_key": secrets.token_urlsafe(32)} if "fingerprint_key" in fields else {}
    # Backends are declared but never contacted: the app's lifespan does not run here.
    for backend in ("postgres", "redis", "rabbitmq"):
        extra[f"{backend}_host"] = "127.0.0.1"
    extra |= {
        "postgres_db": package,
        "postgres_user": package,
        "redis_user": package,
        "rabbitmq_user": package,
    }
    return config.Settings(
        service_name=service, jwt_signing_key=secret, jwt_public_keys=public, _env_file=None, **extra
    )


def openapi_document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, from its app factory."""
    package = service.replace("-", "_")
    main = importlib.import_module(f"{package}.main")
    return main.create_app(_placeholder_settings(package, service)).openapi()


def _node_bin() -> Path:
    return REPO_ROOT / ".tools" / "node" / "bin"


def _typescript(document: Path, out: Path) -> None:
    tool = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists():
        raise PlatformError(
            f"{tool.relative_to(REPO_ROOT)} is missing", hint="run scripts/bootstrap.sh (npm ci in frontend/)"
        )
    env = {**os.environ, "PATH": f"{_node_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(tool), str(document), "-o", str(out)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise PlatformError(f"openapi-typescript failed on {document.name}: {done.stderr.strip()}")


def generate(dest: Path, names: list[str] | None = None) -> list[Path]:
    """Write every service's document and types into *dest*; returns the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for service in names or services():
        document = dest / f"{service}.json"
        document.write_text(json.dumps(openapi_document(service), indent=2, sort_keys=True) + "\n")
        types = dest / f"{service}.d.ts"
        _typescript(document, types)
        written += [document, types]
    return written


def fresh_files() -> dict[str, str]:
    """What the apps generate now: file name -> text."""
    with tempfile.TemporaryDirectory() as tmp:
        return {p.name: p.read_text() for p in generate(Path(tmp))}


def stale_files(root: Path = REPO_ROOT, fresh: dict[str, str] | None = None) -> list[str]:
    """Generated files whose committed text differs from *fresh* (default: what the apps produce
    now), is missing, or is left over from a removed service."""
    fresh = fresh_files() if fresh is None else fresh
    committed = root / OUT
    stale = [
        n for n, text in fresh.items() if not (committed / n).is_file() or (committed / n).read_text() != text
    ]
    if committed.is_dir():
        stale += [p.name for p in committed.iterdir() if p.name not in fresh]
    return sorted(str(OUT / name) for name in stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files()
            for rel in stale:
                sys.stderr.write(f"error: {rel} is out of date\nhint: run python -m infra.api_client\n")
            return 1 if stale else 0
        with tempfile.TemporaryDirectory() as tmp:  # all or nothing: a failure leaves the old files
            files = generate(Path(tmp))
            target = REPO_ROOT / OUT
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in files:
                shutil.copy2(path, target / path.name)
                sys.stderr.write(f"wrote {OUT / path.name}\n")
    except PlatformError as exc:
        sys.stderr.write(f"error: {exc}\n")
        if getattr(exc, "hint", None):
            sys.stderr.write(f"hint: {exc.hint}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
