"""The platform's token keys as the services read them: ``JWT_SIGNING_KEY`` and ``JWT_PUBLIC_KEYS``.

Each key is generated as a random secret (a Pulumi ``RandomPassword`` kept in the stack's state, a
``platform dev`` state secret, a ``.env`` value); the Ed25519 private key is its SHA-256, exactly as
``servicekit.keys`` derives it. Only the issuer (the service whose manifest says ``issues_tokens``)
gets the secret of the signing key; every service gets the JWK Set of the public halves, each with
its RFC 7638 thumbprint as ``kid``. (infra never imports servicekit: the deploy environment has only
this package; a test proves both derive the same keys.)
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: File (and variable) names the services read.
SIGNING_KEY_FILE = "JWT_SIGNING_KEY"
PUBLIC_KEYS_FILE = "JWT_PUBLIC_KEYS"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(secret: str) -> dict[str, str]:
    """The public JWK (with ``kid``) of the Ed25519 key derived from *secret*."""
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode()).digest())
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = _b64url(raw)
    required = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))  # RFC 7638
    kid = _b64url(hashlib.sha256(required.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


def public_keys_document(secrets: Sequence[str]) -> str:
    """``JWT_PUBLIC_KEYS``: the compact JWK Set of the keys derived from *secrets*, in that order."""
    return json.dumps({"keys": [public_jwk(secret) for secret in secrets]}, separators=(",", ":"))
