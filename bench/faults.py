"""Fault injection under load: steady mixed traffic through the gateway while each component of a real
`platform dev` is SIGKILLed in turn; the supervisor must bring it back without any command.

    .venv/bin/python bench/faults.py [--faults postgres,redis,...] [--settle 5]

Load (one client thread, sequential, all through the HTTPS gateway): create a listing (an
acknowledged write when 201), search listings, pay for an earlier listing with a fresh Luhn-valid
approved card (a new buyer every few payments: the card-testing limits allow 20 per buyer and 10 per
card an hour), retrying a payment with the same Idempotency-Key until it is answered, like a client.

Per fault it prints: requests that failed (5xx, 429 excluded, or no answer) between the kill and
recovery + settle, seconds until the component was healthy again *and* a request through the
gateway succeeded, acknowledged writes lost (listings answered 201 that are gone: must be 0) and
events applied (acknowledged payments whose listing turned ``sold``: must be all), plus the count of
charges per listing (must be 1: nothing charged twice).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PLATFORM = str(Path(sys.executable).with_name("platform"))
DEFAULT_FAULTS = (
    "marketplace-svc", "payment-svc", "auth-svc", "chat-svc", "postgres", "redis", "rabbitmq", "gateway",
)  # fmt: skip
PASSWORD = "correct horse battery staple 42"
PAYMENTS_PER_BUYER = 15


def luhn_card() -> str:
    """A random 16-digit Visa-like number with a valid Luhn check digit (the sandbox approves it)."""
    digits = [4, *(random.randrange(10) for _ in range(14))]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Load:
    """The client: its counters and what was acknowledged."""

    base: str
    ca: str
    errors: list[float] = field(default_factory=list)
    ok: list[float] = field(default_factory=list)
    listings: list[str] = field(default_factory=list)  # acknowledged (201)
    paid: dict[str, str] = field(default_factory=dict)  # listing -> payment id (201)
    charges: dict[str, set[str]] = field(default_factory=dict)  # listing -> distinct payment ids
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=10)

    def call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            r = client.request(method, self.base + path, **kwargs)
        except httpx.HTTPError:
            self.errors.append(time.monotonic())
            return None
        (self.errors if r.status_code >= 500 else self.ok).append(time.monotonic())
        return r

    def account(self, client: httpx.Client) -> str:
        while not self.stop.is_set():
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            r = self.call(client, "POST", "/api/auth/register", json={"email": email, "password": PASSWORD})
            if r is None or r.status_code != 201:
                time.sleep(0.5)
                continue
            while not self.stop.is_set():
                login = self.call(
                    client, "POST", "/api/auth/login", json={"email": email, "password": PASSWORD}
                )
                if login is not None and login.status_code == 200:
                    return login.json()["access_token"]
                time.sleep(0.5)
        return ""

    def pay(self, client: httpx.Client, buyer: str, listing: str) -> None:
        key = str(uuid.uuid4())
        body = {
            "listing_id": listing, "amount_minor": 1000, "currency": "EUR",
            "card": {"number": luhn_card(), "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not self.stop.is_set():
            r = self.call(
                client, "POST", "/api/payments", json=body,
                headers={"Authorization": f"Bearer {buyer}", "Idempotency-Key": key},
            )  # fmt: skip
            if r is not None and r.status_code == 201:
                self.paid[listing] = r.json()["id"]
                self.charges.setdefault(listing, set()).add(r.json()["id"])
                return
            if r is not None and r.status_code == 404:  # payment-svc has not seen listing.created yet
                time.sleep(0.3)
                continue
            if r is not None and 400 <= r.status_code < 500 and r.status_code != 429:
                return  # a client error (e.g. already sold): not acknowledged, not retried
            time.sleep(0.5)

    def run(self) -> None:
        with self.client() as client:
            seller = self.account(client)
            buyer, payments, pending = self.account(client), 0, []
            while not self.stop.is_set():
                r = self.call(
                    client, "POST", "/api/marketplace/listings",
                    json={"title": "Bench lamp", "price_minor": 1000, "currency": "EUR"},
                    headers={"Authorization": f"Bearer {seller}"},
                )  # fmt: skip
                if r is not None and r.status_code == 201:
                    self.listings.append(r.json()["id"])
                    pending.append(r.json()["id"])
                self.call(client, "GET", "/api/marketplace/listings?limit=5")
                if len(pending) > 2:
                    self.pay(client, buyer, pending.pop(0))
                    payments += 1
                    if payments % PAYMENTS_PER_BUYER == 0:
                        buyer = self.account(client)
                time.sleep(0.05)


def component(state_dir: Path, name: str) -> dict[str, Any]:
    state = json.loads((state_dir / "state.json").read_text())
    return next(c for c in state["components"] if c["name"] == name)


def healthy(state_dir: Path, name: str, old_pid: int) -> bool:
    result = cli("dev", "status", "--state-dir", str(state_dir), "--json", timeout=60)
    rows = {r["name"]: r for r in json.loads(result.stdout)["components"]}
    row = rows.get(name)
    return bool(row and row["pid"] != old_pid and row["healthy"])


def inject(load: Load, state_dir: Path, name: str, settle: float) -> dict[str, Any]:
    old = component(state_dir, name)["pid"]
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    recovered = None
    with load.client() as client:
        while time.monotonic() - t0 < 180:
            if healthy(state_dir, name, old):
                r = load.call(client, "GET", "/api/marketplace/listings?limit=1")
                if r is not None and r.status_code == 200:
                    recovered = time.monotonic() - t0
                    break
            time.sleep(0.5)
    time.sleep(settle)
    end = t0 + (recovered or 180) + settle
    return {
        "fault": name,
        "errors_seen": sum(1 for t in load.errors if t0 <= t <= end),
        "ok_during": sum(1 for t in load.ok if t0 <= t <= end),
        "recovery_s": round(recovered, 1) if recovered is not None else None,
    }


def verify(load: Load) -> dict[str, Any]:
    """Acknowledged listings that are gone, and acknowledged payments whose event was not applied."""
    lost, unapplied = 0, set(load.paid)
    with load.client() as client:
        headers = {"Authorization": "Bearer x"}  # bypass the gateway cache (reads are public anyway)
        for listing in load.listings:
            r = client.get(f"{load.base}/api/marketplace/listings/{listing}", headers=headers)
            lost += r.status_code == 404
        deadline = time.monotonic() + 120
        while unapplied and time.monotonic() < deadline:
            for listing in list(unapplied):
                r = client.get(f"{load.base}/api/marketplace/listings/{listing}", headers=headers)
                if r.status_code == 200 and r.json()["status"] == "sold":
                    unapplied.discard(listing)
            time.sleep(1)
    return {
        "acknowledged_listings": len(load.listings),
        "acknowledged_writes_lost": lost,
        "acknowledged_payments": len(load.paid),
        "events_applied": len(load.paid) - len(unapplied),
        "charged_twice": sum(1 for ids in load.charges.values() if len(ids) > 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join(DEFAULT_FAULTS))
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of load after each recovery")
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    state_dir.chmod(0o755)
    up = cli("dev", "up", "--state-dir", str(state_dir), "--json")
    if up.returncode != 0:
        cli("dev", "down", "--state-dir", str(state_dir))
        raise SystemExit(f"platform dev up failed:\n{up.stderr[-3000:]}")
    state = json.loads(up.stdout)
    load = Load(f"https://localhost:{state['ports']['gateway_https']}", state["ca_cert"])
    worker = threading.Thread(target=load.run, daemon=True)
    rows = []
    try:
        worker.start()
        time.sleep(10)  # steady state first
        for name in args.faults.split(","):
            rows.append(inject(load, state_dir, name, args.settle))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        load.stop.set()
        worker.join(120)
        summary = verify(load)
    finally:
        load.stop.set()
        cli("dev", "down", "--state-dir", str(state_dir))
    print(f"{'fault':<16} {'errors':>7} {'ok':>6} {'recovery_s':>10}")
    for row in rows:
        print(f"{row['fault']:<16} {row['errors_seen']:>7} {row['ok_during']:>6} {row['recovery_s']!s:>10}")
    print(json.dumps({"faults": rows, **summary}, indent=2))
    good = (
        summary["acknowledged_writes_lost"] == 0
        and summary["events_applied"] == summary["acknowledged_payments"]
        and summary["charged_twice"] == 0
        and all(r["recovery_s"] is not None for r in rows)
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
