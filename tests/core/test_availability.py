"""Free slots for alternatives: the soonest free slot at each nearby centre, in one query (for
each centre, a subquery that walks its slots in time order and stops at the first free one),
with the same rules as `free_slots`."""

from __future__ import annotations

from datetime import timedelta

from core.booking.availability import first_free_at_each, free_slots
from core.catalogue.search import index
from core.models import Closure
from tests.conftest import both_databases
from tests.factories import make_centre, make_field, make_procedure, make_service, make_slot


@both_databases
def test_the_soonest_free_slot_at_each_centre(session, now):
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    proc = make_procedure("1.000777", "Đăng ký khai sinh", field=civil)
    a, b, c, d = (make_centre(name=f"Phường {n}") for n in "ABCD")
    a_civil, b_civil = make_service(a, "A", fields=[civil]), make_service(b, "A", fields=[civil])
    b_other = make_service(b, "B", fields=[civil])
    c_land = make_service(c, "A", fields=[land])  # takes another field only
    d_civil = make_service(d, "A", fields=[civil])
    soon, later = now + timedelta(hours=2), now + timedelta(days=1, hours=2)
    make_slot(a_civil, soon, capacity=2, booked=2)  # full
    a_first = make_slot(a_civil, later)
    make_slot(a_civil, later + timedelta(hours=1))
    b_first = make_slot(b_other, soon)  # the soonest at B is on its other line
    make_slot(b_civil, soon + timedelta(minutes=30))
    make_slot(c_land, soon)
    make_slot(d_civil, now - timedelta(hours=1))  # already begun
    d_closed = make_slot(d_civil, later)
    session.add(Closure(centre_id=d.id, day=d_closed.day, reason="Sự cố"))
    session.commit()
    entry = index.get(session, proc.code)

    found = first_free_at_each(session, entry, now=now, centre_ids=[a.id, b.id, c.id, d.id])

    assert {code: slot.id for code, slot in found.items()} == {
        a.code: a_first.id,
        b.code: b_first.id,
    }
    # The same slots as the general query finds first at each centre.
    for centre in (a, b):
        [expected] = free_slots(session, entry, now=now, centre_id=centre.id, limit=1)
        assert found[centre.code] == expected
    assert first_free_at_each(session, entry, now=now, centre_ids=[]) == {}
