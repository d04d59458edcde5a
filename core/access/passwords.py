"""Password hashes, in the format werkzeug.security writes (`method$salt$hex`), so hashes
made by earlier versions (werkzeug's scrypt and pbkdf2) keep verifying.

New hashes are scrypt (n=2^15, r=8, p=1), the memory-hard default of werkzeug 3; pbkdf2 is
read for older accounts and for the fast hashes tests make.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from functools import cache

# The shortest password an account may have.
MIN_PASSWORD_LENGTH = 8
_SALT_ALPHABET = string.ascii_letters + string.digits
_SALT_LENGTH = 16
_SCRYPT = (2**15, 8, 1)


def _digest(method: str, salt: str, password: str) -> str | None:
    """The hex digest `method` (e.g. "scrypt:32768:8:1", "pbkdf2:sha256:600000") makes; None
    for a method this module does not know."""
    name, *args = method.split(":")
    secret, salted = password.encode("utf-8"), salt.encode("utf-8")
    if name == "scrypt":
        n, r, p = (int(a) for a in args) if len(args) == 3 else _SCRYPT
        # 128·n·r·p bytes of working memory, and a little for scrypt's own bookkeeping.
        return hashlib.scrypt(secret, salt=salted, n=n, r=r, p=p, maxmem=132 * n * r * p).hex()
    if name == "pbkdf2" and len(args) == 2:
        return hashlib.pbkdf2_hmac(args[0], secret, salted, int(args[1])).hex()
    return None


def hash_password(password: str) -> str:
    """A new salted hash of `password` (scrypt)."""
    salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(_SALT_LENGTH))
    method = "scrypt:{}:{}:{}".format(*_SCRYPT)
    return f"{method}${salt}${_digest(method, salt, password)}"


def password_matches(stored: str, password: str) -> bool:
    """Whether `password` is the one `stored` was made from (constant-time comparison)."""
    method, _, rest = stored.partition("$")
    salt, _, expected = rest.partition("$")
    if not expected:
        return False
    try:
        found = _digest(method, salt, password)
    except (ValueError, TypeError):
        return False
    return found is not None and hmac.compare_digest(found, expected)


@cache
def _equaliser() -> str:
    return hash_password("xephang-timing-equaliser")


def spend_a_check(password: str) -> None:
    """Take as long as checking a real password, so that an unknown username answers in the
    same time as a wrong password."""
    password_matches(_equaliser(), password)
