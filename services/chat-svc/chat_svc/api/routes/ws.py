"""``/api/chat/ws``: a WebSocket that receives the caller's new messages live.

Authenticate with the access token as the subprotocols ``Sec-WebSocket-Protocol: bearer, <jwt>`` (the
server then accepts ``bearer``). A token in the URL (``?token=``) is refused: URLs end up in access
logs and browser history. Server -> client frames are JSON: ``{"type": "message", "message":
{...MessageOut}}``; a client may send ``ping`` and gets ``pong``. Close codes: 4401 bad or missing
token, token expired or session revoked (re-authenticate and reconnect); 4429 too many sockets;
1013 reconnect, then catch up with ``GET .../messages``: the client read too slowly, or live delivery
was interrupted (Redis down; new sockets get 1013 until it is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from servicekit.auth import authenticate
from servicekit.errors import Unauthorized

from chat_svc.api.deps import HubDep, parse_user_id
from chat_svc.hub import (
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    REASON_UNAVAILABLE,
    TooManyConnections,
)

router = APIRouter(prefix="/api/chat", tags=["live"])
SUBPROTOCOL = "bearer"
CLOSE_TOO_MANY = 4429


def _token(ws: WebSocket) -> str | None:
    """The token of the ``bearer, <jwt>`` subprotocol pair; None when absent or sent in the URL."""
    if "token" in ws.query_params or "access_token" in ws.query_params:
        return None
    protocols = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(protocols) >= 2 and protocols[0].lower() == SUBPROTOCOL:
        return protocols[1]
    return None


@router.websocket("/ws")
async def live(ws: WebSocket, hub: HubDep) -> None:
    """Push the caller's new messages until they disconnect, their token expires or their session
    is revoked."""
    token = _token(ws)
    try:
        if not token:
            raise Unauthorized("send the access token as the subprotocols 'bearer, <token>'")
        principal = authenticate(ws.app, token)
        user_id = parse_user_id(principal.user_id)
    except Unauthorized as exc:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=exc.message)
        return
    await ws.accept(subprotocol=SUBPROTOCOL)
    if not hub.is_subscribed:  # nothing could be delivered live: tell the client now
        await ws.close(code=CLOSE_TRY_AGAIN_LATER, reason=REASON_UNAVAILABLE)
        return
    try:
        conn = await hub.add(user_id, principal.session_id, ws)
    except TooManyConnections as exc:
        await ws.close(code=CLOSE_TOO_MANY, reason=str(exc))
        return
    expires = principal.expires_at.timestamp() if principal.expires_at else time.time()
    deadline = asyncio.get_running_loop().time() + max(0.0, expires - time.time())
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                text = await ws.receive_text()
                if text == "ping":
                    conn.offer("pong")
    except TimeoutError:
        conn.close(CLOSE_UNAUTHORIZED, "token expired")
    except (WebSocketDisconnect, RuntimeError):  # closed by the client, or by the hub meanwhile
        pass
    finally:
        await hub.remove(conn)
        if not conn.closed.is_set():
            with contextlib.suppress(Exception):
                await ws.close()
