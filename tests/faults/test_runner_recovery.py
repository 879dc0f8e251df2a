"""Issue 14 items 1-3: state survives `down`/`up`, crashed components come back, nothing is orphaned.

One platform for the module. Order matters only for speed: the destructive down/up test runs last.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import aio_pika
import pytest

from infra.spec import REPO_ROOT

from .conftest import (
    PLATFORM,
    DevPlatform,
    alive,
    new_state_dir,
    poll,
    processes_mentioning,
    recorded_pids,
    run_async,
    run_cli,
)

PROBE_QUEUE = "faults.persistence-probe"


@pytest.mark.parametrize("name", ["marketplace-svc", "postgres", "rabbitmq"])
def test_a_killed_component_is_restarted_by_the_supervisor(dev_platform: DevPlatform, name: str) -> None:
    others = {
        c["name"]: c["pid"] for c in dev_platform.reload()["components"] if c["name"] not in (name, "epmd")
    }
    old = dev_platform.kill(name)
    row = dev_platform.healthy_again(name, old)
    assert row["restarts"] >= 1
    assert f"{name} is not running; restarting" in dev_platform.log("supervisor")
    after = {c["name"]: c["pid"] for c in dev_platform.reload()["components"]}
    assert {n: after[n] for n in others} == others  # only the dead one was touched
    # the services reconnect on their own: a read through the gateway works again
    with dev_platform.client() as client:
        poll(
            lambda: client.get(dev_platform.url("/api/marketplace/listings?limit=1")).status_code == 200,
            timeout=60,
            what="marketplace through the gateway",
        )


def test_up_on_a_partly_running_platform_starts_only_what_is_dead(dev_platform: DevPlatform) -> None:
    supervisor = dev_platform.kill("supervisor", signal.SIGTERM)
    poll(lambda: dev_platform.status()["supervisor"]["state"] == "down", timeout=20, what="supervisor down")
    payment = dev_platform.kill("payment-svc")
    before = {c["name"]: c["pid"] for c in dev_platform.reload()["components"]}
    status = run_cli("dev", "status", "--state-dir", str(dev_platform.state_dir), timeout=60)
    assert status.returncode == 1  # something is down: status says so

    up = run_cli("dev", "up", "--state-dir", str(dev_platform.state_dir), "--json")
    assert up.returncode == 0, up.stderr[-3000:]
    after = {c["name"]: c["pid"] for c in dev_platform.reload()["components"]}
    assert after["payment-svc"] != payment
    assert after["supervisor"] != supervisor
    untouched = {n for n in before if n not in ("payment-svc", "supervisor")}
    assert {n: after[n] for n in untouched} == {n: before[n] for n in untouched}
    rows = dev_platform.status()
    assert all(r["healthy"] for r in rows.values()), rows
    assert rows["payment-svc"]["restarts"] == 1


def test_a_service_stops_gracefully_and_quickly_while_rabbitmq_is_down(dev_platform: DevPlatform) -> None:
    from infra.local.runner import DevOptions, DevRunner

    dev_platform.kill("supervisor", signal.SIGTERM)  # keep RabbitMQ down for the whole test
    poll(lambda: dev_platform.status()["supervisor"]["state"] == "down", timeout=20, what="supervisor down")
    dev_platform.kill("rabbitmq")
    dev_platform.kill("epmd")
    log = dev_platform.state_dir / "logs" / "marketplace-svc.log"
    before = log.stat().st_size
    runner = DevRunner(DevOptions(state_dir=dev_platform.state_dir), root=REPO_ROOT)
    began = time.monotonic()
    runner.restart_component("marketplace-svc", migrate=False)
    took = time.monotonic() - began
    with log.open("rb") as handle:
        handle.seek(before)
        tail = handle.read().decode(errors="replace")
    assert '"event":"service_stopped"' in tail.replace(" ", "")  # a clean, logged shutdown, not a kill
    assert took < 60  # stop (bounded at ~8 s) + start on a loaded machine; it used to hit the kill limit
    up = run_cli("dev", "up", "--state-dir", str(dev_platform.state_dir), "--json")
    assert up.returncode == 0, up.stderr[-3000:]
    assert all(r["healthy"] for r in dev_platform.status().values())


async def _publish_probe(url: str, body: bytes) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(PROBE_QUEUE, durable=True, arguments={"x-queue-type": "classic"})
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=PROBE_QUEUE)


async def _get_probe(url: str) -> bytes | None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PROBE_QUEUE, durable=True, arguments={"x-queue-type": "classic"})
        message = await queue.get(fail=False)
        if message is None:
            return None
        await message.ack()
        return message.body


def test_down_then_up_keeps_ports_and_queued_messages(dev_platform: DevPlatform) -> None:

    admin = dev_platform.secrets()["rabbitmq:admin"]
    url = f"amqp://admin:{admin}@127.0.0.1:{dev_platform.ports['rabbitmq']}/"
    body = f"probe-{time.time()}".encode()
    run_async(_publish_probe(url, body))
    ports = dict(dev_platform.ports)
    pids = recorded_pids(dev_platform.reload())

    down = run_cli("dev", "down", "--state-dir", str(dev_platform.state_dir), timeout=180)
    assert down.returncode == 0, down.stderr
    assert "supervisor" in down.stdout
    assert alive(pids) == []
    up = run_cli("dev", "up", "--state-dir", str(dev_platform.state_dir), "--json")
    assert up.returncode == 0, up.stderr[-3000:]
    dev_platform.state = json.loads(up.stdout)

    assert dev_platform.ports == ports  # every URL stays where it was
    assert run_async(_get_probe(url)) == body  # the persistent message survived
    nodes = sorted(
        p.name for p in (dev_platform.state_dir / "data" / "rabbitmq" / "mnesia").iterdir() if p.is_dir()
    )
    assert len([n for n in nodes if not n.endswith("-plugins-expand")]) == 1, nodes


def test_an_interrupted_up_is_reported_and_down_stops_everything_it_spawned() -> None:
    state_dir = new_state_dir("platform-faults-interrupt-")
    up = subprocess.Popen(
        [PLATFORM, "dev", "up", "--state-dir", str(state_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def rabbitmq_spawned() -> bool:
            path = state_dir / "state.json"
            if not path.exists():
                return False
            return any(c["name"] == "rabbitmq" for c in json.loads(path.read_text())["components"])

        poll(rabbitmq_spawned, timeout=60, interval=0.05, what="rabbitmq recorded at spawn")
        up.kill()  # no cleanup at all: only the state file knows what runs
        up.wait(10)
        assert processes_mentioning(str(state_dir))  # RabbitMQ, epmd (and maybe more) were left behind

        status = run_cli("dev", "status", "--state-dir", str(state_dir), "--json", timeout=60)
        assert status.returncode == 1
        rows = {r["name"]: r for r in json.loads(status.stdout)["components"]}
        assert not all(r["healthy"] for r in rows.values())
        assert "epmd" in rows
        assert "rabbitmq" in rows
    finally:
        down = run_cli("dev", "down", "--state-dir", str(state_dir), timeout=180)
    assert down.returncode == 0, down.stderr
    poll(lambda: not processes_mentioning(str(state_dir)), timeout=10, what="nothing left running")
    shutil.rmtree(state_dir, ignore_errors=True)
