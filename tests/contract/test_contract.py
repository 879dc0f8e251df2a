"""Each service, run for real, answers only what its OpenAPI document describes.

The four services run as uvicorn processes (as `platform dev` runs them) on real PostgreSQL, Redis
and RabbitMQ, provisioned like the integration tests' (``tests/integration/conftest.py``). For each,
schemathesis reads ``/openapi.json`` and fuzzes every documented operation (schema examples,
boundary and invalid values, random data, and chains of calls linked by the responses) with a
logged-in user's access token; a response the document does not describe fails the test: an
undocumented status, content type, header or body, a 5xx, or a 405 whose ``Allow`` disagrees
with the document. Bounded: a few examples per operation, deterministic generation, the four
runs at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.conftest import SERVICES
from tests.integration.conftest import Served

#: Every check about the response matching the document (schemathesis' names).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
#: Test cases per operation and phase (coverage adds its boundary and invalid values).
MAX_EXAMPLES = 5
#: Chains of calls only where a service's own responses link its operations: payment-svc's
#: (POST -> GET by Location) need a paid listing, which only marketplace-svc's events can give it.
PHASES = {
    "auth-svc": "examples,coverage,fuzzing",
    "marketplace-svc": "examples,coverage,fuzzing,stateful",
    "payment-svc": "examples,coverage,fuzzing",
    "chat-svc": "examples,coverage,fuzzing,stateful",
}
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def schemathesis_argv(name: str, url: str, token: str, config: Path, report_dir: Path) -> list[str]:
    """The schemathesis run against one service's document (deterministic: no seed, no database)."""
    return [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--phases",
        PHASES[name],
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]


def run_schemathesis(
    name: str, url: str, token: str, config: Path, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Run schemathesis against *name* in *workdir*; its output is kept in ``schemathesis.log``."""
    workdir.mkdir()
    argv = schemathesis_argv(name, url, token, config, workdir)
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, cwd=workdir)
    (workdir / "schemathesis.log").write_text(run.stdout + run.stderr)
    return run


def config_file(base: Path, listing_id: str) -> Path:
    """The bounds of ``schemathesis.toml`` plus the seeded listing, used for half of the values of
    every ``listing_id`` (path or body) the fuzzer generates."""
    binding = '{ dictionary = "listings", probability = 0.5 }'
    seeded = (
        f'\n[dictionaries.listings]\nvalues = ["{listing_id}"]\n\n'
        f'[parameters]\n"path.listing_id" = {binding}\n"body.listing_id" = {binding}\n'
    )
    path = base / "schemathesis.toml"
    path.write_text(CONFIG.read_text() + seeded)
    return path


@pytest.fixture(scope="module")
async def runs(
    services: dict[str, Served],
    access_token: str,
    seeded_listing: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """One schemathesis run per service, all at once (each mostly waits for its service)."""
    base = tmp_path_factory.mktemp("schemathesis")
    config = config_file(base, seeded_listing)
    results = await asyncio.gather(
        *(
            asyncio.to_thread(run_schemathesis, name, services[name].url, access_token, config, base / name)
            for name in SERVICES
        )
    )
    return dict(zip(SERVICES, results, strict=True))


@pytest.mark.timeout(900)  # the first item sets up the platform and all four runs: ~3 min at load 15
@pytest.mark.parametrize("name", SERVICES)
def test_every_response_is_described_by_the_document(
    name: str, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    run = runs[name]
    assert run.returncode == 0, f"{name}: schemathesis found responses its document does not describe\n" + (
        run.stdout[-12000:] + run.stderr[-3000:]
    )
