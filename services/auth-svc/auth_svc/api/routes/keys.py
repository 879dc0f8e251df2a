"""``GET /.well-known/jwks.json``: the public keys every service verifies tokens with (RFC 7517)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from servicekit.auth import public_keys

from auth_svc.schemas import JwkSet

router = APIRouter(tags=["keys"])
#: Verifiers may cache the set briefly; a rotation publishes the new key long before signing with it.
CACHE_CONTROL = "public, max-age=300"


@router.get(
    "/.well-known/jwks.json",
    responses={200: {"description": "JWK Set of Ed25519 keys (kty OKP, alg EdDSA), by kid", "model": JwkSet}},
)
async def jwks(request: Request) -> Response:
    """The JWK Set of ``JWT_PUBLIC_KEYS``: the signing key's public half and, during a rotation, the
    other key still in use."""
    document = public_keys(request.app.state.settings).document
    return Response(
        json.dumps(document, separators=(",", ":")),
        media_type="application/json",
        headers={"Cache-Control": CACHE_CONTROL},
    )
