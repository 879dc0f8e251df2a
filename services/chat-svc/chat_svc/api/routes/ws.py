"""``/api/chat/ws``: a WebSocket that receives the caller's new messages live.

Authenticate with the access token either as ``?token=<jwt>`` or, to keep it out of access logs,
as the subprotocols ``Sec-WebSocket-Protocol: bearer, <jwt>`` (the server then accepts ``bearer``).
Server -> client frames are JSON: ``{"type": "message", "message": {...MessageOut}}``; a client
may send ``ping`` and gets ``pong``. Close codes: 4401 bad/missing token, 4429 too many sockets.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from servicekit.auth import decode_token
from servicekit.errors import Unauthorized

from chat_svc.api.deps import HubDep, parse_user_id
from chat_svc.hub import TooManyConnections

router = APIRouter(prefix="/api/chat", tags=["live"])
SUBPROTOCOL = "bearer"
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY = 4429


def _token(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept) from the query string or the subprotocol list."""
    protocols = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(protocols) >= 2 and protocols[0].lower() == SUBPROTOCOL:
        return protocols[1], SUBPROTOCOL
    return ws.query_params.get("token"), None


@router.websocket("/ws")
async def live(ws: WebSocket, hub: HubDep) -> None:
    """Push the caller's new messages until they disconnect."""
    token, subprotocol = _token(ws)
    try:
        if not token:
            raise Unauthorized("missing token")
        claims = decode_token(ws.app.state.settings, token, "access")
        user_id = parse_user_id(claims.subject)
    except Unauthorized as exc:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=exc.message)
        return
    await ws.accept(subprotocol=subprotocol)
    try:
        await hub.add(user_id, ws)
    except TooManyConnections as exc:
        await ws.close(code=CLOSE_TOO_MANY, reason=str(exc))
        return
    try:
        while True:
            text = await ws.receive_text()
            if text == "ping":
                await ws.send_text("pong")
    except WebSocketDisconnect:
        pass
    finally:
        await hub.remove(user_id, ws)
        with contextlib.suppress(Exception):
            await ws.close()
