"""What the gateway costs (or saves) the web app: a page and a static chunk, through nginx (TLS, the
nonce CSP, the proxy cache for /_next/static/) vs. the same URL on the Next.js server directly.

    .venv/bin/python bench/web_gateway.py [--duration 10] [--connections 50]

Needs the production build (scripts/build-web.sh). Starts its own `platform dev` (temp state dir, the
dev stack with the rate limit lifted so wrk measures the proxy, not the limiter), runs wrk side by side
in one run, prints req/s and p99 of each pair and their ratios (gateway / direct), then stops everything.
No target is asserted: the ratios are reported (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import wrk  # noqa: E402

from infra.local.runner import DevOptions, DevRunner  # noqa: E402
from infra.spec import RateLimit, load_spec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    spec = load_spec("dev")
    lifted = spec.config.gateway.model_copy(update={"rate_limit": RateLimit(rps=1_000_000, burst=1_000_000)})
    spec = spec.model_copy(update={"config": spec.config.model_copy(update={"gateway": lifted})})
    state_dir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    state_dir.chmod(0o755)
    progress = lambda line: print(line, file=sys.stderr)  # noqa: E731
    runner = DevRunner(DevOptions(state_dir=state_dir, progress=progress), spec)
    state = runner.up().state
    try:
        web = state.component("web")
        if web is None or not web.url:
            raise SystemExit("the web app did not start: build it first (scripts/build-web.sh)")
        gateway = f"https://localhost:{state.ports['gateway_https']}"
        direct = web.url.rstrip("/")
        page = httpx.get(f"{direct}/", timeout=30).text
        chunk = re.search(r'/_next/static/[^"]+\.js', page)
        if chunk is None:
            raise SystemExit("no /_next/static/ chunk on the page")
        results = {}
        for name, path in (("page /", "/"), ("static chunk", chunk.group(0))):
            through = wrk(f"{gateway}{path}", args.connections, args.duration)
            alone = wrk(f"{direct}{path}", args.connections, args.duration)
            results[name] = {
                "gateway": through,
                "direct": alone,
                "rps_ratio": round(through["rps"] / alone["rps"], 2),
                "p99_ratio": round(through["p99_ms"] / alone["p99_ms"], 2) if alone["p99_ms"] else None,
            }
        print(json.dumps(results, indent=2))
    finally:
        runner.down()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
