"""Last in the session: `down` leaves no process, `up` is idempotent, and a second `up` works."""

from __future__ import annotations

import json

import httpx

from .conftest import Platform, alive, recorded_pids, run_cli


def test_up_on_a_running_platform_changes_nothing(platform: Platform) -> None:
    before = (platform.state_dir / "state.json").read_text()
    again = run_cli("dev", "up", "--state-dir", str(platform.state_dir), "--json")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert (platform.state_dir / "state.json").read_text() == before


def test_status_reports_every_component_healthy(platform: Platform) -> None:
    status = run_cli("dev", "status", "--state-dir", str(platform.state_dir), "--json", timeout=60)
    assert status.returncode == 0, status.stdout
    rows = json.loads(status.stdout)["components"]
    names = {r["name"] for r in rows}
    expected = {
        "gateway",
        "postgres",
        "redis",
        "rabbitmq",
        "epmd",
        "prometheus",
        "alertmanager",
        "supervisor",
    }
    assert expected | {s.name for s in platform.spec.services} == names
    assert all(r["healthy"] and r["running"] for r in rows)


def test_down_leaves_no_process_and_a_second_up_works(platform: Platform) -> None:
    platform.reload_state()
    pids = recorded_pids(platform.state)
    down = run_cli("dev", "down", "--state-dir", str(platform.state_dir), timeout=120)
    assert down.returncode == 0, down.stderr
    assert "epmd" in down.stdout
    assert alive(pids) == []
    assert run_cli("dev", "status", "--state-dir", str(platform.state_dir)).stdout.strip() == "not running"

    up = run_cli("dev", "up", "--state-dir", str(platform.state_dir), "--scrape-interval", "1s", "--json")
    assert up.returncode == 0, up.stderr[-3000:]
    platform.state = json.loads(up.stdout)
    with platform.client() as client:
        r = client.get(platform.url("/api/marketplace/listings?limit=1"))
    assert r.status_code == 200
    assert r.json()["total"] >= 1  # data survived down/up
    assert httpx.get(f"http://127.0.0.1:{platform.ports['prometheus']}/-/ready", timeout=5).status_code == 200
