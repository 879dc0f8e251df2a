"""Gateway benchmark: a cached listing GET through nginx (TLS) -> marketplace-svc vs. a bare FastAPI
hello-world under the same uvicorn settings hit directly; then 200 clients for 30 s through the gateway.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 50]

Starts its own `platform dev` (temp state dir, the dev stack with the rate limit lifted so wrk measures
the proxy, not the limiter), runs wrk side by side in one run, prints ratios (targets: req/s >= 0.6x,
p99 <= 2x), the CPU the service worker (and the hello-world) used per request, and the 5xx count of
the soak, then stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.ports import free_port, port_accepts  # noqa: E402
from infra.local.runner import DevOptions, DevRunner  # noqa: E402
from infra.spec import RateLimit, load_spec  # noqa: E402

COUNT_5XX = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) s5 = 0 end
function response(status, headers, body) if status >= 500 then s5 = s5 + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("s5") end
  io.write(string.format("5xx: %d\\n", total))
end
"""


#: A cookie makes nginx bypass its cache (infra/render/nginx.py), so the request reaches the service,
#: which answers from its own Redis cache-aside read.
BYPASS_NGINX_CACHE = "Cookie: bench=1"


def wrk(
    url: str, connections: int, duration: int, script: str | None = None, header: str | None = None
) -> dict[str, float]:
    """Run wrk; return req/s, p99 (ms), non-2xx/3xx and (with the script) 5xx counts."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if header:
        argv += ["-H", header]
    if script:
        argv += ["-s", script]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    fivexx = re.search(r"5xx: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": p99,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "5xx": int(fivexx.group(1)) if fivexx else 0,
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by *pids* (from /proc; gone processes count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def with_cpu_per_request(pids: list[int], run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """*run*'s wrk result plus the CPU microseconds *pids* used per request meanwhile."""
    before = cpu_seconds(pids)
    result = run()
    used = cpu_seconds(pids) - before
    requests = result["requests"]
    return {**result, "cpu_us_per_request": round(used * 1e6 / requests, 1) if requests else 0.0}


def cached_listing(https_port: int, ca: str) -> str:
    """Register, log in, create a listing; return its public URL (served from the gateway cache)."""
    base = f"https://localhost:{https_port}"
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(verify=ca, timeout=15) as client:
        client.post(f"{base}/api/auth/register", json={"email": email, "password": "bench password 1234"})
        token = client.post(
            f"{base}/api/auth/login", json={"email": email, "password": "bench password 1234"}
        )
        listing = client.post(
            f"{base}/api/marketplace/listings",
            json={"title": "Bench lamp", "description": "x", "price_minor": 100, "currency": "EUR"},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        ).json()
        url = f"{base}/api/marketplace/listings/{listing['id']}"
        client.get(url)
        assert client.get(url).headers["x-cache-status"] == "HIT"
    return url


def hello_world(port: int, log: Path) -> subprocess.Popen[bytes]:
    """The baseline app under the same uvicorn settings as the services (see uvicorn_service.py)."""
    argv = [
        sys.executable, "-m", "uvicorn", "hello_app:create_app", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--no-server-header",
        "--log-level", "warning", "--no-access-log", "--app-dir", str(Path(__file__).parent),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not port_accepts(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"hello-world did not start; see {log}")
        time.sleep(0.1)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--soak", type=int, default=30, help="seconds of the 200-client run")
    parser.add_argument(
        "--keep-state", action="store_true", help="keep the platform's state dir (logs, ~0.5 GB of data)"
    )
    args = parser.parse_args()
    spec = load_spec("dev")
    lifted = spec.config.gateway.model_copy(update={"rate_limit": RateLimit(rps=1_000_000, burst=1_000_000)})
    spec = spec.model_copy(update={"config": spec.config.model_copy(update={"gateway": lifted})})
    state_dir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    state_dir.chmod(0o755)
    runner = DevRunner(
        DevOptions(state_dir=state_dir, progress=lambda line: print(line, file=sys.stderr)), spec
    )
    state = runner.up().state
    hello = None
    try:
        url = cached_listing(state.ports["gateway_https"], state.ca_cert or "")
        hello = hello_world(free_port(), state_dir / "logs" / "hello.log")
        hello_url = f"http://127.0.0.1:{hello.args[hello.args.index('--port') + 1]}/hello"
        gateway = wrk(url, args.connections, args.duration)
        service = state.component("marketplace-svc")
        through = with_cpu_per_request(
            service.alive_pids() if service else [],
            lambda: wrk(url, args.connections, args.duration, header=BYPASS_NGINX_CACHE),
        )
        direct = with_cpu_per_request([hello.pid], lambda: wrk(hello_url, args.connections, args.duration))
        script = state_dir / "count5xx.lua"
        script.write_text(COUNT_5XX)
        soak = wrk(url, 200, args.soak, str(script), header=BYPASS_NGINX_CACHE)
    finally:
        if hello is not None:
            hello.terminate()
            hello.wait(10)
        runner.down()
        if args.keep_state:
            print(f"state kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    report = {
        "connections": args.connections,
        "duration_s": args.duration,
        "gateway_nginx_cache_hit": gateway,
        "gateway_to_service_redis_cached": through,
        "direct_hello_world": direct,
        "rps_ratio_nginx_cache_hit": round(gateway["rps"] / direct["rps"], 2),
        "p99_ratio_nginx_cache_hit": round(gateway["p99_ms"] / direct["p99_ms"], 2),
        "rps_ratio_through_to_service": round(through["rps"] / direct["rps"], 2),
        "p99_ratio_through_to_service": round(through["p99_ms"] / direct["p99_ms"], 2),
        "soak_200_clients_through_to_service": soak,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
