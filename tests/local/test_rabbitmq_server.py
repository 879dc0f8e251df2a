"""RabbitMqServer: AMQP round trips, plugins, definitions, restart durability, kill incl. epmd.

RabbitMQ boots in ~5 s: the shared node serves the read-only checks; the restart test and then the
kill test share one plugin-less node of this module (graceful stop ~1 s instead of ~6 s).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from pathlib import Path

import aio_pika
import httpx
import pytest

from infra.local.ports import port_accepts
from infra.local.process import ServerError, pid_alive


def _topology(vhost: str, queue: str) -> dict:
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {"name": "events", "vhost": vhost, "type": "topic", "durable": True,
             "auto_delete": False, "internal": False, "arguments": {}},
        ],
        "queues": [{"name": queue, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}],
        "bindings": [
            {"source": "events", "vhost": vhost, "destination": queue, "destination_type": "queue",
             "routing_key": "order.*", "arguments": {}},
        ],
    }  # fmt: skip


async def _publish(url: str, exchange: str, key: str, body: bytes) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await target.publish(message, routing_key=key)


async def _get(url: str, queue: str) -> bytes:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue)
        message = await q.get(timeout=5)
        await message.ack()
        return message.body


async def test_shared_node_round_trips_a_message(rabbitmq_server):
    connection = await aio_pika.connect(rabbitmq_server.url())
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"ping"), routing_key=queue.name)
        message = await queue.get(timeout=5)
        await message.ack()
    assert message.body == b"ping"


async def test_shared_node_serves_management_api_and_metrics(rabbitmq_server):
    info = rabbitmq_server.info
    async with httpx.AsyncClient(timeout=10) as client:
        overview = await client.get(f"{info.management_url}/api/overview", auth=(info.user, info.password))
        metrics = await client.get(info.prometheus_url)
    assert overview.status_code == 200
    assert overview.json()["node"] == info.node_name
    assert metrics.status_code == 200
    assert "# TYPE rabbitmq_" in metrics.text


async def test_imported_definitions_route_messages(rabbitmq_server):
    vhost, queue = f"test-{secrets.token_hex(3)}", "orders.events"
    rabbitmq_server.import_definitions(_topology(vhost, queue))
    url = rabbitmq_server.url(vhost)
    await _publish(url, "events", "order.created", b"routed")
    assert await _get(url, queue) == b"routed"


@pytest.fixture(scope="module")
def own_node(module_server_factory):
    """A plugin-less node (stops in ~1 s) booted with definitions; restarted, then killed, below."""
    definitions = module_server_factory.base_dir / "definitions.json"
    definitions.write_text(json.dumps(_topology("market", "shop.events")))
    return module_server_factory.rabbitmq(plugins=(), definitions=definitions)


async def test_restart_keeps_ports_and_persistent_messages(own_node):
    ports = (own_node.port, own_node.dist_port, own_node.epmd_port)
    await _publish(own_node.url("market"), "events", "order.paid", b"durable")
    own_node.restart()
    assert (own_node.port, own_node.dist_port, own_node.epmd_port) == ports
    assert await _get(own_node.url("market"), "shop.events") == b"durable"


def test_kill_ends_beam_and_private_epmd(own_node):
    node = own_node.start()  # no-op when the restart test left it running
    names = subprocess.run(
        ["epmd", "-port", str(node.epmd_port), "-names"], capture_output=True, text=True, check=True
    ).stdout
    assert f"name rabbit-{node.port} " in names  # registered with its own epmd, not the system one
    cookie = node.dir / "home" / ".erlang.cookie"
    assert cookie.stat().st_mode & 0o777 == 0o400
    seen = node.seen_pids()
    commands = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in node.pids()}
    assert {"beam.smp", "epmd"} <= commands
    assert node.epmd_pid() in seen
    node.kill()
    assert [pid for pid in seen if pid_alive(pid)] == []
    assert not port_accepts(node.port)
    assert not port_accepts(node.epmd_port)


def test_epmd_port_taken_fails_fast_and_clearly(server_factory):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        node = server_factory.rabbitmq(start=False, plugins=(), epmd_port=port)
        with pytest.raises(ServerError) as info:
            node.start()
    assert info.value.message.startswith("epmd exited")
    assert f"127.0.0.1:{port} is already in use" in info.value.message
    assert not node.is_running()
    assert node.alive_pids() == set()
