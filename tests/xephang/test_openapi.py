"""The OpenAPI document says what is served: refusals as problem+json, the statuses each
operation can answer and no catch-all, request patterns exactly as strict as validation."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.citizens.identity import (
    EMAIL_PATTERN,
    PHONE_PATTERN,
    citizen_id_pattern,
    normalise_citizen_id,
    normalise_phone,
)
from core.common.timeutil import EARLIEST_DAY, LATEST_DAY
from web.api import DAY_PATTERN

PROBLEM = "application/problem+json"
TODAY = date(2026, 12, 7)
CCCD_PATTERN = re.compile(citizen_id_pattern(TODAY))
SEPARATORS = " .-()\u00a0\u3000"


def _document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op, [*item.get("parameters", []), *op.get("parameters", [])]


def test_every_refusal_is_problem_json_and_there_is_no_default(client):
    doc = _document(client)
    assert "responses" not in doc["components"] and "Error" not in doc["components"]["schemas"]
    for path, method, op, _ in _operations(doc):
        responses = op["responses"]
        assert "default" not in responses, (method, path)
        for code, response in responses.items():
            if int(code) >= 400:
                assert list(response["content"]) == [PROBLEM], (method, path, code)
                ref = response["content"][PROBLEM]["schema"]["$ref"]
                assert ref.endswith(("/Problem", "/SlotProblem")), (method, path, code)


def test_each_operation_lists_what_app_wide_layers_answer(client):
    doc = _document(client)
    for path, method, op, params in _operations(doc):
        codes = set(op["responses"])
        if op.get("security"):
            assert {"401", "403"} <= codes, (method, path)
        if any(p["in"] == "path" for p in params):
            assert "404" in codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= codes, (method, path)
    booking = doc["paths"]["/api/v1/appointments"]["post"]["responses"]
    assert {"404", "409", "429"} <= set(booking)
    # The counter API has no rate limit, so no 429; the public ticket API has one.
    assert "429" not in doc["paths"]["/api/v1/counters/{counter_id}/open"]["post"]["responses"]
    assert "429" in doc["paths"]["/api/v1/tickets/{public_id}"]["get"]["responses"]


def test_parameters_say_what_the_guards_refuse(client):
    doc = _document(client)
    counter = doc["paths"]["/api/v1/counters/{counter_id}"]["parameters"][0]["schema"]
    assert counter["maximum"] == 2**31 - 1
    code = doc["paths"]["/api/v1/centres/{code}"]["parameters"][0]["schema"]
    assert not re.fullmatch(code["pattern"], "26\x0043") and re.fullmatch(code["pattern"], "26743")
    load = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/load"]["get"]["parameters"]}
    assert not re.fullmatch(load["date"]["pattern"], "9999-12-31")
    assert re.fullmatch(load["date"]["pattern"], "2026-12-07")
    body = doc["components"]["schemas"]["BookingBody"]["properties"]
    assert body["consent"]["enum"] == [True]
    assert body["citizen_id"]["pattern"] and body["phone"]["pattern"] == PHONE_PATTERN


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/procedures")
    assert response.status_code == 405 and response.mimetype == PROBLEM
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}


# --- Patterns exactly as strict as core.citizens.identity's rules --------------------------------------

digits = st.text(alphabet="0123456789", min_size=8, max_size=13)
separated = st.lists(
    st.tuples(st.sampled_from("0123456789+"), st.text(alphabet=SEPARATORS, max_size=2)),
    max_size=14,
).map(lambda parts: "".join(a + b for a, b in parts))
near_cccd = st.builds(
    lambda province, century, year, rest: f"{province:03d}{century}{year:02d}{rest}",
    st.integers(0, 99),
    st.integers(0, 9),
    st.integers(0, 99),
    st.text(alphabet="0123456789", min_size=5, max_size=7),
)
FUZZ = settings(max_examples=400, deadline=None, database=None)


@FUZZ
@given(st.one_of(digits, separated, near_cccd, st.text(max_size=16)))
def test_the_cccd_pattern_is_the_cccd_rule(value):
    accepted = normalise_citizen_id(value, today=TODAY) is not None
    if any(ch.isspace() and not ch.isprintable() for ch in value):
        return  # control characters: the API refuses them before this rule
    assert bool(CCCD_PATTERN.search(value)) == accepted, value


@FUZZ
@given(st.one_of(digits.map(lambda d: "0" + d[:9]), digits.map(lambda d: "+84" + d), separated))
def test_the_phone_pattern_is_the_phone_rule(value):
    accepted = normalise_phone(value) is not None
    if any(ch.isspace() and not ch.isprintable() for ch in value):
        return
    assert bool(re.search(PHONE_PATTERN, value)) == accepted, value


def test_unicode_digits_are_no_digits():
    assert normalise_phone("09١٢٣٤٥٦٧٨") is None
    assert normalise_citizen_id("079090٠٠١٢٣٤", today=TODAY) is None
    assert normalise_citizen_id("079 090 001 234", today=TODAY) == "079090001234"


def test_the_email_pattern():
    # fullmatch: `$` as in JSON Schema (ECMA 262), never before a final newline.
    for ok in ("", "  ", "an@example.vn", " an.nguyen@xa.hcm.gov.vn "):
        assert re.fullmatch(EMAIL_PATTERN, ok), ok
    for bad in ("an@example.vn\n", "an@@example.vn", "an@example", "a n@example.vn"):
        assert not re.fullmatch(EMAIL_PATTERN, bad), bad


def test_retry_after_is_documented_as_served(client):
    doc = _document(client)
    booking = doc["paths"]["/api/v1/appointments"]["post"]["responses"]
    # Always with a lost database; a per-citizen 429 (one remote ticket a day …) has none.
    assert booking["503"]["headers"]["Retry-After"]["required"] is True
    assert booking["429"]["headers"]["Retry-After"]["required"] is False


def test_the_day_pattern_is_the_day_range():
    for day in (EARLIEST_DAY, LATEST_DAY, date(2026, 2, 28)):
        assert re.fullmatch(DAY_PATTERN, day.isoformat())
    for day in (EARLIEST_DAY - timedelta(days=1), LATEST_DAY + timedelta(days=1)):
        assert not re.fullmatch(DAY_PATTERN, day.isoformat())
