"""Token-signing keys: Ed25519 (JWS ``EdDSA``), published as a JWK Set with RFC 7638 thumbprint ``kid``s.

Only the token issuer (auth-svc) holds a private key (``JWT_SIGNING_KEY``); every service verifies
with the public keys (``JWT_PUBLIC_KEYS``, a JWK Set), so a compromised service cannot mint tokens.

``JWT_SIGNING_KEY`` is either a PKCS#8 PEM Ed25519 private key or a random secret of at least 32
characters from which the key is derived (the Ed25519 private key is the SHA-256 of its UTF-8 text):
a secret that fits one line of a ``.env`` file or a generated password. The ``kid`` of a key is
the RFC 7638 thumbprint of its public JWK, so it never has to be configured. During a rotation the
set holds two keys: the new one (published first, everywhere) and the old one (until the tokens it
signed have expired).

CLI (works in any service image)::

    python -m servicekit.keys new                  # JWT_SIGNING_KEY=... and JWT_PUBLIC_KEYS=... lines
    python -m servicekit.keys public KEY [KEY ...]   # the JWK Set of these signing keys (new first)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
#: Shortest secret a key may be derived from.
MIN_SECRET_LENGTH = 32
#: Values that ship as placeholders (``.env.example``); never accepted as keys.
PLACEHOLDER_PREFIX = "change-me"


class InvalidKey(ValueError):  # noqa: N818 - a ValueError: pydantic reports it as a settings error
    """A signing key or key set that cannot be used."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK of *public* with its RFC 7638 thumbprint as ``kid``."""
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    required = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))  # RFC 7638 order
    thumbprint = hashlib.sha256(required.encode()).digest()
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": _b64url(thumbprint),
        "alg": ALGORITHM,
        "use": "sig",
    }


@dataclass(frozen=True)
class SigningKey:
    """A private key and the ``kid`` its tokens carry."""

    private: Ed25519PrivateKey
    kid: str

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK (what the key set publishes)."""
        return public_jwk(self.private.public_key())


def derive_private_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key of a secret: its SHA-256 is the 32-byte private key."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode()).digest())


@lru_cache(maxsize=8)
def load_signing_key(text: str) -> SigningKey:
    """A :class:`SigningKey` from a PEM Ed25519 private key or a secret of 32+ characters."""
    text = text.strip()
    if text.startswith(PLACEHOLDER_PREFIX):
        raise InvalidKey("is the .env.example placeholder; generate one with `python -m servicekit.keys new`")
    if text.startswith("-----BEGIN"):
        try:
            private = serialization.load_pem_private_key(text.encode(), password=None)
        except ValueError as exc:
            raise InvalidKey(f"is not a readable PEM private key ({exc})") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidKey("must be an Ed25519 key (JWS EdDSA)")
    elif len(text) < MIN_SECRET_LENGTH:
        raise InvalidKey(f"must be a PEM Ed25519 key or a random secret of {MIN_SECRET_LENGTH}+ characters")
    else:
        private = derive_private_key(text)
    return SigningKey(private, public_jwk(private.public_key())["kid"])


@dataclass(frozen=True)
class KeySet:
    """The public keys tokens are verified with, by ``kid``."""

    keys: dict[str, Ed25519PublicKey]
    document: dict[str, Any]

    def get(self, kid: str | None) -> Ed25519PublicKey | None:
        """The key of *kid*, or None when the set has no such key."""
        return self.keys.get(kid) if kid else None


@lru_cache(maxsize=8)
def load_key_set(text: str) -> KeySet:
    """Parse a JWK Set (JSON) of Ed25519 public keys; every key must carry its thumbprint ``kid``."""
    if text.strip().startswith(PLACEHOLDER_PREFIX):
        raise InvalidKey("is the .env.example placeholder; generate one with `python -m servicekit.keys new`")
    try:
        document = json.loads(text)
        entries = document["keys"]
    except (ValueError, TypeError, KeyError):
        raise InvalidKey('must be a JWK Set: {"keys": [{"kty": "OKP", "crv": "Ed25519", ...}]}') from None
    if not isinstance(entries, list) or not entries:
        raise InvalidKey("holds no key")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or (entry.get("kty"), entry.get("crv")) != ("OKP", "Ed25519"):
            raise InvalidKey("may only hold Ed25519 keys (kty OKP, crv Ed25519)")
        try:
            public = Ed25519PublicKey.from_public_bytes(_b64url_decode(str(entry["x"])))
        except (KeyError, ValueError):
            raise InvalidKey("has a key whose 'x' is not a base64url Ed25519 public key") from None
        jwk = public_jwk(public)
        if entry.get("kid") != jwk["kid"]:
            raise InvalidKey(f"has a key whose kid is not its RFC 7638 thumbprint ({jwk['kid']})")
        keys[jwk["kid"]] = public
    return KeySet(keys, {"keys": [public_jwk(k) for k in keys.values()]})


def jwks(*signing_keys: SigningKey) -> dict[str, Any]:
    """The JWK Set publishing *signing_keys*' public halves (in the order given)."""
    return {"keys": [key.jwk for key in signing_keys]}


def main(argv: Sequence[str] | None = None) -> int:
    """``new``: a fresh key as ``.env`` lines; ``public KEY...``: the JWK Set of these keys."""
    parser = argparse.ArgumentParser(prog="python -m servicekit.keys", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("new", help="print JWT_SIGNING_KEY and JWT_PUBLIC_KEYS for a new key")
    public = commands.add_parser("public", help="print the JWK Set of the given signing keys")
    public.add_argument("keys", nargs="+", help="signing keys (secrets or PEM), the signing one first")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            secret = secrets.token_urlsafe(48)
            document = json.dumps(jwks(load_signing_key(secret)), separators=(",", ":"))
            print(f"JWT_SIGNING_KEY={secret}\nJWT_PUBLIC_KEYS='{document}'")
        else:
            print(json.dumps(jwks(*(load_signing_key(key) for key in args.keys)), separators=(",", ":")))
    except InvalidKey as exc:
        print(
            f"error: the key {exc}\nhint: pass the JWT_SIGNING_KEY values, the signing one first",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
