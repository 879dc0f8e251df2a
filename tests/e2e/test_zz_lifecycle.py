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
    assert expected | {s.name for s in platform.spec.services} <= names
    # The web app (when its build exists): exactly what this run expects.
    assert names == set(platform.state["expected"])
    assert all(r["healthy"] and r["running"] for r in rows)


def test_up_with_changed_flags_on_a_running_platform_says_so_and_changes_nothing(platform: Platform) -> None:
    before = (platform.state_dir / "state.json").read_text()
    https = json.loads(before)["ports"]["gateway_https"]
    state_dir = str(platform.state_dir)
    up = run_cli("dev", "up", "--state-dir", state_dir, "-s", "staging", "--gateway-port", str(https + 1))
    assert up.returncode == 2, up.stderr
    error, hint = up.stderr.splitlines()[-2:]
    assert error.startswith("error: the platform is already running with other settings: -s staging ")
    assert f"--gateway-port {https + 1} (it uses {https})" in error
    # the hint repeats --state-dir: following it acts on this platform, not the default one
    assert hint.startswith(
        f"hint: restart it with them: `platform dev down --state-dir {state_dir} && "
        f"platform dev up -s staging --gateway-port {https + 1} --state-dir {state_dir}`"
    )
    assert (platform.state_dir / "state.json").read_text() == before


def test_restart_one_component(platform: Platform) -> None:
    platform.reload_state()
    before = {c["name"]: c for c in platform.state["components"]}
    old = before["auth-svc"]
    restarted = run_cli("dev", "restart", "auth-svc", "--state-dir", str(platform.state_dir))
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith("restarted auth-svc: pid ")
    platform.reload_state()
    new = {c["name"]: c for c in platform.state["components"]}
    assert new["auth-svc"]["pid"] != old["pid"]
    assert new["auth-svc"]["ports"] == old["ports"]
    assert new["gateway"]["pid"] == before["gateway"]["pid"]  # only that component restarted
    status = run_cli("dev", "status", "--state-dir", str(platform.state_dir), "--json", timeout=60)
    assert status.returncode == 0, status.stdout
    unknown = run_cli("dev", "restart", "nope", "--state-dir", str(platform.state_dir))
    assert unknown.returncode == 2
    assert "no component called 'nope'" in unknown.stderr


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
