"""Signed QR payloads and random codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeSerializer

# Short human booking code: no 0/O, 1/I/L look-alikes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_QR_SALT = "xephang.appointment-qr"


def booking_code(length: int = 8) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def manage_token(secret: str, code: str, nonce: str) -> str:
    """The owner's token for an appointment, derived from the app secret and its random nonce.

    Deriving rather than storing it lets an idempotent replay (same key, same citizen) hand
    back the same token; only its hash is kept, and it is compared in constant time.
    """
    mac = hmac.new(secret.encode("utf-8"), f"manage:{code}:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")


def sign_qr(secret: str, code: str, nonce: str) -> str:
    """The QR payload for an appointment: its code and nonce, signed with the app secret."""
    return URLSafeSerializer(secret, salt=_QR_SALT).dumps({"c": code, "n": nonce})


def read_qr(secret: str, payload: str) -> tuple[str, str] | None:
    """(code, nonce) from a genuine QR payload, or None if forged or garbled."""
    try:
        data = URLSafeSerializer(secret, salt=_QR_SALT).loads(payload)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    return data["c"], str(data.get("n", ""))


def token_hash(token: str) -> str:
    """SHA-256 of a random bearer/manage token (tokens are long and random; no key needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    """Constant-time check of a presented token against its stored hash."""
    return hmac.compare_digest(token_hash(token or ""), expected_hash or "")
