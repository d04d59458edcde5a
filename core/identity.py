"""Citizen identity: CCCD structure, Vietnamese mobile numbers, the keyed ID hash."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

# Province/city codes of birth registration used in the 12-digit CCCD (Circular 07/2016/TT-BCA,
# as amended): the pre-2025 63 provinces.
PROVINCE_CODES = frozenset(
    [
        "001",
        "002",
        "004",
        "006",
        "008",
        "010",
        "011",
        "012",
        "014",
        "015",
        "017",
        "019",
        "020",
        "022",
        "024",
        "025",
        "026",
        "027",
        "030",
        "031",
        "033",
        "034",
        "035",
        "036",
        "037",
        "038",
        "040",
        "042",
        "044",
        "045",
        "046",
        "048",
        "049",
        "051",
        "052",
        "054",
        "056",
        "058",
        "060",
        "062",
        "064",
        "066",
        "067",
        "068",
        "070",
        "072",
        "074",
        "075",
        "077",
        "079",
        "080",
        "082",
        "083",
        "084",
        "086",
        "087",
        "089",
        "091",
        "092",
        "093",
        "094",
        "095",
        "096",
    ]
)
# Digit 4 encodes century and sex: 0/1 → 1900s, 2/3 → 2000s, 4/5 → 2100s …
_CENTURY = {
    0: 1900,
    1: 1900,
    2: 2000,
    3: 2000,
    4: 2100,
    5: 2100,
    6: 2200,
    7: 2200,
    8: 1800,
    9: 1800,
}
_MOBILE_PREFIXES = ("03", "05", "07", "08", "09")
_NON_DIGIT = re.compile(r"[\s.\-()]")


def normalise_citizen_id(raw: str, *, today: date) -> str | None:
    """The 12-digit CCCD if `raw` has its structure (province code, century, year), else None."""
    value = _NON_DIGIT.sub("", raw or "")
    if len(value) != 12 or not value.isdigit():
        return None
    if value[:3] not in PROVINCE_CODES:
        return None
    year = _CENTURY[int(value[3])] + int(value[4:6])
    if year > today.year or year < today.year - 130:
        return None
    return value


def normalise_phone(raw: str) -> str | None:
    """A Vietnamese mobile as 10 digits starting 03/05/07/08/09 (accepts +84 / 84 forms)."""
    value = _NON_DIGIT.sub("", raw or "")
    if value.startswith("+84"):
        value = "0" + value[3:]
    elif value.startswith("84") and len(value) == 11:
        value = "0" + value[2:]
    if len(value) == 10 and value.isdigit() and value.startswith(_MOBILE_PREFIXES):
        return value
    return None


def citizen_hash(citizen_id: str, key: bytes) -> str:
    """Keyed hash of a normalised CCCD: equal IDs match, the ID cannot be read back."""
    return hmac.new(key, citizen_id.encode("ascii"), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a random bearer/manage token (tokens are long and random; no key needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    """Constant-time check of a presented token against its stored hash."""
    return hmac.compare_digest(token_hash(token or ""), expected_hash or "")
