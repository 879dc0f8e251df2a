"""Attacks on the live WebSocket (issue 11, items 7, 9 and 11), against chat-svc served by uvicorn on
the session's real PostgreSQL, Redis and RabbitMQ.

- item 7: a socket authenticated once stayed open forever - after its session was revoked, and
  after its token expired;
- item 9: the token travelled in the query string (and so into access logs);
- item 11: one slow reader stalled delivery to every user of the replica.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from chat_svc.core.config import Settings
from servicekit.testing import issue_test_token
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CLOSE_UNAUTHORIZED = 4401


async def until(condition: Any, limit_s: float) -> None:
    """Poll *condition* every 50 ms; fail after *limit_s* seconds."""
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {limit_s} s")


def subprotocols(token: str) -> list[Any]:
    return ["bearer", token]


async def closed_with(ws: Any, limit_s: float) -> int | None:
    """Read until the server closes the socket (answering pongs meanwhile); its close code."""
    try:
        async with asyncio.timeout(limit_s):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None


async def announce_revoked(channel: Any, session_ids: list[str]) -> None:
    """Publish ``session.revoked`` exactly as auth-svc's outbox relay does."""
    now = datetime.now(UTC)
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "session.revoked",
        "version": 1,
        "occurred_at": now.isoformat(),
        "producer": "auth-svc",
        "payload": {
            "user_id": str(uuid.uuid4()),
            "session_ids": session_ids,
            "reason": "logout",
            "revoked_at": now.isoformat(),
            "valid_until": (now + timedelta(minutes=16)).isoformat(),
        },
    }
    exchange = await channel.get_exchange("events")
    message = aio_pika.Message(json.dumps(envelope).encode(), content_type="application/json")
    await exchange.publish(message, routing_key="session.revoked")


async def test_a_socket_is_closed_when_its_session_is_revoked(
    replicas: tuple[Any, Any], chat_settings: Settings, admin_channel: Any
) -> None:
    session = uuid.uuid4().hex
    token = issue_test_token(chat_settings, str(uuid.uuid4()), session_id=session)
    other = issue_test_token(chat_settings, str(uuid.uuid4()))
    async with (
        connect(replicas[0].ws, subprotocols=subprotocols(token)) as revoked_ws,
        connect(replicas[1].ws, subprotocols=subprotocols(other)) as other_ws,
    ):
        await revoked_ws.send("ping")
        assert await revoked_ws.recv() == "pong"
        await announce_revoked(admin_channel, [session])
        assert await closed_with(revoked_ws, 15) == CLOSE_UNAUTHORIZED
        await other_ws.send("ping")
        assert await other_ws.recv() == "pong"  # another session's socket stays
    with pytest.raises((InvalidStatus, ConnectionClosed)):  # and the revoked token cannot reconnect
        async with connect(replicas[1].ws, subprotocols=subprotocols(token)) as again:
            await again.recv()


async def test_a_socket_is_closed_when_its_token_expires(
    replicas: tuple[Any, Any], chat_settings: Settings
) -> None:
    token = issue_test_token(chat_settings, str(uuid.uuid4()), ttl=timedelta(seconds=3))
    async with connect(replicas[0].ws, subprotocols=subprotocols(token)) as ws:
        await ws.send("ping")
        assert await ws.recv() == "pong"
        assert await closed_with(ws, 20) == CLOSE_UNAUTHORIZED


async def test_a_token_in_the_query_string_is_refused(
    replicas: tuple[Any, Any], chat_settings: Settings
) -> None:
    token = issue_test_token(chat_settings, str(uuid.uuid4()))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{replicas[0].ws}?token={token}") as ws, asyncio.timeout(10):
            await ws.recv()
    assert refused.value.response.status_code == 403


@pytest.fixture
async def patient_replica(chat_settings: Settings, serve_replica: Any) -> AsyncIterator[Any]:
    """A replica that would wait a long time for a slow socket (60 s per send), with small send queues."""
    settings = chat_settings.model_copy(update={"ws_send_timeout_seconds": 60.0, "ws_send_queue_size": 8})
    async with serve_replica(settings) as replica:
        yield replica


async def _slow_reader(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        (
            f"GET /api/chat/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bearer, {token}\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_a_slow_reader_does_not_stall_delivery_to_other_users(
    patient_replica: Any, chat_settings: Settings
) -> None:
    slow, fast = uuid.uuid4(), uuid.uuid4()
    hub = patient_replica.app.state.hub
    _, writer = await _slow_reader(patient_replica.port, issue_test_token(chat_settings, str(slow)))
    try:
        async with connect(
            patient_replica.ws, subprotocols=subprotocols(issue_test_token(chat_settings, str(fast)))
        ) as ws:
            await until(lambda: hub.connected(slow) and hub.connected(fast), 10)
            chunk = json.dumps({"type": "message", "message": {"body": "x" * 256 * 1024}})
            for _ in range(48):  # 12 MiB: far more than the kernel and transport buffers hold
                await hub.publish([slow], chunk)
            await hub.publish([fast], json.dumps({"type": "message", "message": {"body": "for fast"}}))
            async with asyncio.timeout(10):  # the old hub waited up to the 60 s send timeout here
                frame = json.loads(await ws.recv())
            assert frame["message"]["body"] == "for fast"
            await until(lambda: not hub.connected(slow), 10)  # dropped, not waited for
    finally:
        writer.close()
