"""Web app benchmark: Lighthouse (mobile) on the browse and a listing page, first-load JavaScript per
route, and the server-rendered browse page's req/s against a bare Next page with the same markup.

    .venv/bin/python bench/web.py [--duration 10] [--connections 50] [--state-dir DIR]

Builds the app with its baseline page (``WEB_BENCH_BASELINE=1``, into ``frontend/.next-bench``: the
browse page's markup from static data, in the same server, so both run under identical settings),
starts its own `platform dev` (the dev stack with the rate limit lifted; or uses the one in
``--state-dir``), seeds 12 listings, runs the production server against the gateway and measures:

- Lighthouse 13 (npm ``lighthouse``, pinned in package-lock) with Debian's Chromium, default mobile
  settings (simulated slow 4G, 4x CPU slowdown): performance, accessibility, best practices
  (targets >= 0.95, 1.0, >= 0.95);
- first-load JS per route: every ``<script src>`` of the served HTML, gzip-compressed (target
  <= 150 kB);
- wrk, 50 connections, alternated twice: ``/`` (calls marketplace-svc through the gateway) vs
  ``/bench-baseline`` (static data); req/s ratio (target >= 0.5) and the worst p99 of each.
Numbers are from a shared machine: read them as ratios from one run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gateway import wrk  # noqa: E402

from infra.local.ports import free_port  # noqa: E402
from infra.local.runner import DevOptions, DevRunner  # noqa: E402
from infra.spec import RateLimit, load_spec  # noqa: E402

FRONTEND = ROOT / "frontend"
DIST = ".next-bench"
NODE_BIN = ROOT / ".tools" / "node" / "bin"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple 42"
TARGETS = {"performance": 0.95, "accessibility": 1.0, "best-practices": 0.95}
JS_BUDGET_KB = 150.0


def node_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}",
        "NEXT_TELEMETRY_DISABLED": "1",
        **extra,
    }


def build(reuse: bool) -> Path:
    """The bench build's standalone server (``--reuse-build``: the last one, if there is one)."""
    server = FRONTEND / DIST / "standalone" / "server.js"
    if not (reuse and server.exists()):
        env = node_env(WEB_BENCH_BASELINE="1", NEXT_DIST_DIR=DIST)
        subprocess.run(
            ["npm", "run", "build"], cwd=FRONTEND, env=env, check=True, capture_output=True, timeout=1200
        )
    return server


def seed(gateway: str, ca: str) -> tuple[str, str]:
    """A user with 12 listings; returns (one listing id, access token)."""
    with httpx.Client(base_url=gateway, verify=ca, timeout=30) as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        client.post("/api/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        token = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()[
            "access_token"
        ]
        ids = []
        for i in range(12):
            body = {
                "title": f"Bench lamp {i}",
                "description": "A brass desk lamp in working order, with a new cable and a warm white bulb.",
                "price_minor": 2500 + i,
                "currency": "EUR",
            }
            r = client.post(
                "/api/marketplace/listings", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids[0], token


def start_app(server: Path, gateway: str, ca: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = node_env(PORT=str(port), HOSTNAME="127.0.0.1", API_BASE_URL=gateway, NODE_EXTRA_CA_CERTS=ca)
    with log.open("w") as out:
        proc = subprocess.Popen(["node", str(server)], cwd=server.parent, env=env, stdout=out, stderr=out)
    origin = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, origin
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"the web app did not start:\n{log.read_text()[-2000:]}")


def first_load_js(origin: str, path: str, cookie: str | None) -> dict[str, Any]:
    """Every script the route's HTML makes a current browser load, gzip-compressed, in kB (1000
    bytes). ``noModule`` scripts (polyfills for browsers without ES modules) are not loaded by any
    browser Lighthouse or these tests run, so they are left out (and counted apart)."""
    headers = {"Cookie": cookie} if cookie else {}
    html = httpx.get(origin + path, headers=headers, timeout=30).text
    tags = re.findall(r"<script\b[^>]*>", html)
    loaded = [t for t in tags if "nomodule" not in t.lower()]
    scripts = sorted({m.group(1) for t in loaded if (m := re.search(r'src="(/_next/static/[^"]+\.js)"', t))})
    raw = gz = 0
    for src in scripts:
        body = httpx.get(origin + src, timeout=30).content
        raw += len(body)
        gz += len(gzip.compress(body, compresslevel=6))
    legacy = len(tags) - len(loaded)
    return {
        "scripts": len(scripts),
        "raw_kB": round(raw / 1000, 1),
        "gzip_kB": round(gz / 1000, 1),
        "nomodule_scripts_skipped": legacy,
    }


def lighthouse(url: str, out: Path) -> dict[str, float]:
    cli = FRONTEND / "node_modules" / "lighthouse" / "cli" / "index.js"
    flags = "--headless=new --no-sandbox" if os.geteuid() == 0 else "--headless=new"
    subprocess.run(
        [
            "node",
            str(cli),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={out}",
            "--only-categories=performance,accessibility,best-practices",
            f"--chrome-flags={flags}",
        ],
        env=node_env(CHROME_PATH=CHROMIUM),
        check=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    return {name: report["categories"][name]["score"] for name in TARGETS}


def combine(runs: list[dict[str, float]]) -> dict[str, float]:
    """Several equally long wrk runs of one URL: mean req/s, the worst p99, each run's req/s."""
    return {
        "rps": round(sum(r["rps"] for r in runs) / len(runs), 2),
        "p99_ms_worst": max(r["p99_ms"] for r in runs),
        "rps_runs": [r["rps"] for r in runs],
        "non_2xx_3xx": sum(r["non_2xx_3xx"] for r in runs),
    }


def measure(origin: str, listing: str, token: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    cookie = f"__Host-mp_access={token}"
    routes = {
        "/": None,
        f"/listings/{listing}": None,
        "/login": None,
        "/register": None,
        "/listings/new": cookie,
        "/purchases": cookie,
        "/chat": cookie,
    }
    js = {path: first_load_js(origin, path, c) for path, c in routes.items()}
    # The bare page too: what the framework alone scores on this machine, the app's floor.
    pages = {"browse": "/", "listing": f"/listings/{listing}", "bare_page": "/bench-baseline"}
    scores = {name: lighthouse(origin + path, work / f"lh-{name}.json") for name, path in pages.items()}
    assert "Bench lamp" in httpx.get(origin + "/", timeout=30).text, "the browse page shows no listings"
    # Alternated, twice each: the machine's load drifts; the sums compare like with like.
    runs = [
        wrk(origin + path, args.connections, args.duration)
        for _ in range(2)
        for path in ("/", "/bench-baseline")
    ]
    browse, baseline = combine(runs[0::2]), combine(runs[1::2])
    return {
        "lighthouse_mobile": scores,
        "lighthouse_targets_met": all(
            scores[page][name] >= target for page in ("browse", "listing") for name, target in TARGETS.items()
        ),
        "first_load_js": js,
        "first_load_js_max_gzip_kB": max(v["gzip_kB"] for v in js.values()),
        "first_load_js_within_150kB": all(v["gzip_kB"] <= JS_BUDGET_KB for v in js.values()),
        "wrk_connections": args.connections,
        "wrk_duration_s": args.duration,
        "browse_page": browse,
        "bare_page_static_data": baseline,
        "rps_ratio_browse_vs_bare": round(browse["rps"] / baseline["rps"], 2),
        "p99_ratio_browse_vs_bare": round(browse["p99_ms_worst"] / baseline["p99_ms_worst"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--state-dir", type=Path, help="use the platform already running here")
    parser.add_argument("--reuse-build", action="store_true", help="use frontend/.next-bench as it is")
    args = parser.parse_args()
    server = build(args.reuse_build)
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    runner = None
    if args.state_dir:
        state = json.loads((args.state_dir / "state.json").read_text())
        https_port, ca = state["ports"]["gateway_https"], state["ca_cert"]
    else:
        spec = load_spec("dev")
        lifted = spec.config.gateway.model_copy(
            update={"rate_limit": RateLimit(rps=1_000_000, burst=1_000_000)}
        )
        spec = spec.model_copy(update={"config": spec.config.model_copy(update={"gateway": lifted})})
        state_dir = work / "platform"
        state_dir.mkdir()
        work.chmod(0o755)
        state_dir.chmod(0o755)
        runner = DevRunner(
            DevOptions(state_dir=state_dir, progress=lambda s: print(s, file=sys.stderr)), spec
        )
        up = runner.up().state
        https_port, ca = up.ports["gateway_https"], up.ca_cert or ""
    gateway = f"https://localhost:{https_port}"
    app = None
    try:
        listing, token = seed(gateway, ca)
        app, origin = start_app(server, gateway, ca, work / "web.log")
        report = measure(origin, listing, token, args, work)
    finally:
        if app is not None:
            app.terminate()
            app.wait(15)
        if runner is not None:
            runner.down()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
