"""Which procedures a line takes: the Python rule and its SQL twin agree on every case."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from core.models import ProcedureLevel, Service, takes_clause
from tests.conftest import both_databases
from tests.factories import make_centre, make_field, make_procedure

LEVELS = (None, ProcedureLevel.COMMUNE, ProcedureLevel.DEPARTMENT)


@both_databases
def test_every_line_and_procedure_is_judged_alike_in_python_and_in_sql(session):
    centre = make_centre("26743", "Phường Bến Thành")
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    procedures = [
        make_procedure(f"9.{n:06d}", field=field, level=level)
        for n, (field, level) in enumerate(
            itertools.product((civil, land), (ProcedureLevel.COMMUNE, ProcedureLevel.DEPARTMENT))
        )
    ]
    lines = []
    shapes = itertools.product(LEVELS, ([], [civil], [civil, land]), ([], procedures[3:]))
    for n, (level, fields, listed) in enumerate(shapes):
        line = Service(
            centre_id=centre.id,
            prefix=chr(ord("A") + n % 26) + str(n // 26),
            name=f"line {n}",
            level=level,
            fields=list(fields),
            procedures=list(listed),
        )
        session.add(line)
        lines.append(line)
    session.flush()
    taken_somewhere = 0
    for proc in procedures:
        in_sql = set(
            session.scalars(
                select(Service.id).where(
                    Service.centre_id == centre.id,
                    takes_clause(
                        Service.id,
                        Service.level,
                        procedure_id=proc.id,
                        field_id=proc.field_id,
                        level=proc.level,
                    ),
                )
            )
        )
        in_python = {line.id for line in lines if line.takes(proc)}
        assert in_sql == in_python, proc.code
        taken_somewhere += len(in_python)
    assert 0 < taken_somewhere < len(lines) * len(procedures)
