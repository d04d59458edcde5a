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
# What people type between digits: spaces (any Unicode space, as pasted), dots, dashes and
# brackets. Control characters (tab, newline …) too on the pages; the API refuses those first.
_NON_DIGIT = re.compile(r"[\s.\-()]")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²' and '٣'


def normalise_citizen_id(raw: str, *, today: date) -> str | None:
    """The 12-digit CCCD if `raw` has its structure (province code, century, year), else None."""
    value = _NON_DIGIT.sub("", raw or "")
    if len(value) != 12 or not _DIGITS.fullmatch(value):
        return None
    if value[:3] not in PROVINCE_CODES:
        return None
    if value[3:6] not in _birth_years(today.year):
        return None
    return value


def normalise_phone(raw: str) -> str | None:
    """A Vietnamese mobile as 10 digits starting 03/05/07/08/09 (accepts +84 / 84 forms)."""
    value = _NON_DIGIT.sub("", raw or "")
    if value.startswith("+84"):
        value = "0" + value[3:]
    elif value.startswith("84") and len(value) == 11:
        value = "0" + value[2:]
    if len(value) == 10 and _DIGITS.fullmatch(value) and value.startswith(_MOBILE_PREFIXES):
        return value
    return None


def _birth_years(this_year: int) -> frozenset[str]:
    """Digits 4-6 of a CCCD (century-and-sex digit, two year digits) of someone born at most
    130 years before `this_year` and not after it."""
    return frozenset(
        f"{digit}{year % 100:02d}"
        for digit, century in _CENTURY.items()
        for year in range(century, century + 100)
        if this_year - 130 <= year <= this_year
    )


# --- The same rules as patterns, for the API's documentation ---------------------------------
#
# JSON Schema patterns (ECMA 262, also read by Python's re) accepting exactly what the
# normalisers above accept, separators included, built from the same tables: a client or a
# test generator that follows the pattern sends only values the API takes.

# \s of Python's re (str.isspace) without the control characters, which the API refuses
# before these rules run.
SPACES = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SEPARATOR = rf"[{SPACES}.\-()]*"
CONTROLS = r"\x00-\x1f\x7f-\x9f"
_EMAIL_CHAR = rf"[^@{SPACES}{CONTROLS}]"
# An e-mail address as core.booking.appointments takes it (after trimming spaces).
EMAIL_RE = rf"{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}{{2,}}"
# Empty (or only spaces) means no address.
EMAIL_PATTERN = rf"^[{SPACES}]*(?:{EMAIL_RE}[{SPACES}]*)?$"


def _trie_pattern(strings: frozenset[str]) -> str:
    """A regex matching exactly `strings` (of equal length), a separator between digits."""
    if not strings or next(iter(strings)) == "":
        return ""
    heads: dict[str, set[str]] = {}
    for item in strings:
        heads.setdefault(item[0], set()).add(item[1:])
    # Heads leading to the same tails share one character class.
    by_tails: dict[frozenset[str], list[str]] = {}
    for head, tails in heads.items():
        by_tails.setdefault(frozenset(tails), []).append(head)
    branches = []
    for tails, chars in sorted(by_tails.items(), key=lambda item: sorted(item[1])):
        cls = chars[0] if len(chars) == 1 else "[" + "".join(sorted(chars)) + "]"
        rest = _trie_pattern(tails)
        branches.append(cls + (_SEPARATOR + rest if rest else ""))
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def citizen_id_pattern(today: date) -> str:
    """A pattern of the CCCDs `normalise_citizen_id` accepts on `today`."""
    parts = [
        _trie_pattern(PROVINCE_CODES),
        _trie_pattern(_birth_years(today.year)),
        _SEPARATOR.join(["[0-9]"] * 6),
    ]
    return f"^{_SEPARATOR}{_SEPARATOR.join(parts)}{_SEPARATOR}$"


def _phone_pattern() -> str:
    prefixes = _trie_pattern(frozenset(p[1] for p in _MOBILE_PREFIXES))
    national = f"{prefixes}{_SEPARATOR}" + _SEPARATOR.join(["[0-9]"] * 8)
    s = _SEPARATOR
    return f"^{s}(?:0|\\+{s}8{s}4|8{s}4){s}{national}{s}$"


PHONE_PATTERN = _phone_pattern()


def citizen_hash(citizen_id: str, key: bytes) -> str:
    """Keyed hash of a normalised CCCD: equal IDs match, the ID cannot be read back."""
    return hmac.new(key, citizen_id.encode("ascii"), hashlib.sha256).hexdigest()
