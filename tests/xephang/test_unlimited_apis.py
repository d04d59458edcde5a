"""The kiosk and counter APIs carry no rate limits and say so to Flask-Limiter up front
(web.api.without_rate_limits): their requests skip its work; the limited APIs keep
their limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import Centre
from tests.factories import make_centre, make_device, make_service, make_staff, staff_token
from web.extensions import limiter


@pytest.fixture
def app_config(now) -> dict:
    return {
        "CLOCK": lambda: now,  # a Monday morning: the centre is open
        "RATE_LIMITS_ENABLED": True,
        "RATE_LIMIT_DEFAULT": "3 per minute",
    }


@pytest.fixture
def floor(session):
    centre = make_centre()
    make_service(centre, "A", counters=1)
    _device, kiosk = make_device(centre)
    officer = staff_token(make_staff(centre, "officer"))
    session.commit()
    return centre.code, centre.counters[0].id, kiosk, officer


def test_kiosk_and_counter_calls_skip_the_limiter(client, floor, monkeypatch):
    code, counter_id, kiosk, officer = floor
    resolved: list[str | None] = []
    original = limiter.limit_manager.resolve_limits

    def spy(app, endpoint, *args, **kwargs):
        resolved.append(endpoint)
        return original(app, endpoint, *args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", spy)
    kiosk_auth = {"Authorization": f"Bearer {kiosk}"}
    officer_auth = {"Authorization": f"Bearer {officer}"}
    for _ in range(5):  # more than RATE_LIMIT_DEFAULT allows a limited API
        walk_in = client.post(
            f"/api/v1/centres/{code}/tickets", json={"service": "A"}, headers=kiosk_auth
        )
        assert walk_in.status_code == 201
    assert (
        client.post(f"/api/v1/counters/{counter_id}/open", headers=officer_auth).status_code == 200
    )
    called = client.post(f"/api/v1/counters/{counter_id}/call-next", headers=officer_auth)
    assert called.status_code == 200
    assert resolved == []
    # A limited API still counts, through the same limiter.
    answers = [client.get("/api/v1/procedures").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert resolved and all(endpoint and "kiosk" not in endpoint for endpoint in resolved)


def test_kiosk_check_in_is_limited_per_kiosk(app, client, floor, session):
    """Check-in by booking code + phone digits is worth guessing: limited per kiosk token,
    while the same kiosk's walk-ins stay unlimited and another kiosk is not throttled."""
    app.config["RATE_LIMIT_KIOSK_CHECKIN"] = "2 per minute"
    code, _counter_id, kiosk, _officer = floor
    _device, other_kiosk = make_device(session.scalars(select(Centre).filter_by(code=code)).one())
    session.commit()
    url = f"/api/v1/centres/{code}/check-ins"
    guess = {"code": "ZZZZZZZZ", "phone_last4": "1234"}
    auth = {"Authorization": f"Bearer {kiosk}"}
    answers = [client.post(url, json=guess, headers=auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    assert answers[-1].mimetype == "application/problem+json"
    assert answers[-1].get_json()["code"] == "rate_limited"
    other = client.post(url, json=guess, headers={"Authorization": f"Bearer {other_kiosk}"})
    assert other.status_code == 404
    walk_in = client.post(f"/api/v1/centres/{code}/tickets", json={"service": "A"}, headers=auth)
    assert walk_in.status_code == 201
