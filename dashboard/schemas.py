"""Request and response schemas of the operations API (responses are documentation only)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from web.api import InputSchema, codes, day

MAX_DAYS = 14


def _date() -> fields.Date:
    return day("Local day (YYYY-MM-DD); today when absent.")


class DayQuery(InputSchema):
    date = _date()


class LoadQuery(InputSchema):
    date = _date()
    days = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_DAYS, error="out_of_range"),
        error_messages=codes(invalid="invalid_integer"),
        metadata={"description": f"Number of days from `date`, 1 to {MAX_DAYS}."},
    )


# --- Responses ----------------------------------------------------------------------------------


class ServiceLoad(ma.Schema):
    service = fields.String(metadata={"description": "Prefix of the line (A, B, …)."})
    name = fields.String()
    capacity = fields.Float(metadata={"description": "Citizens its counters serve in the day."})
    bookable = fields.Integer(metadata={"description": "Seats in its slots."})
    booked = fields.Integer()
    forecast = fields.Float(metadata={"description": "Expected walk-ins."})
    utilisation = fields.Float(
        allow_none=True,
        metadata={"description": "(booked + forecast) / capacity; null: demand, no counter."},
    )
    overloaded = fields.Boolean()


class CentreLoad(ma.Schema):
    centre = fields.String(metadata={"description": "Centre code."})
    name = fields.String()
    date = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    officers = fields.Integer(metadata={"description": "On duty: counters plus dispatched."})
    needed = fields.Integer(metadata={"description": "Erlang C, in the busiest hour."})
    demand = fields.Float()
    utilisation = fields.Float(allow_none=True)
    overloaded = fields.Boolean()
    wait_p90 = fields.Float(
        allow_none=True, metadata={"description": "Minutes; null when the queue only grows."}
    )
    services = fields.List(fields.Nested(ServiceLoad))


class LoadAnswer(ma.Schema):
    date = fields.String()
    days = fields.Integer()
    centres = fields.List(fields.Nested(CentreLoad))


class Figures(ma.Schema):
    issued = fields.Integer()
    served = fields.Integer()
    no_show = fields.Integer()
    cancelled = fields.Integer()
    wait_p50 = fields.Float(allow_none=True, metadata={"description": "Minutes."})
    wait_p90 = fields.Float(allow_none=True, metadata={"description": "Minutes."})
    service_avg = fields.Float(allow_none=True, metadata={"description": "Minutes."})
    eta_error_minutes = fields.Float(allow_none=True)


class CentreStats(Figures):
    centre = fields.String()
    name = fields.String()
    by_source = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(Figures),
        metadata={"description": "appointment | walk_in | remote → the same figures."},
    )


class StatsAnswer(ma.Schema):
    date = fields.String()
    live = fields.Boolean(
        metadata={"description": "Folded from the tickets now: the day is not aggregated yet."}
    )
    centres = fields.List(fields.Nested(CentreStats))


class Move(ma.Schema):
    date = fields.String()
    from_centre = fields.String(allow_none=True, metadata={"description": "null: mobile pool."})
    to_centre = fields.String()
    officers = fields.Integer()
    staff_ids = fields.List(fields.Integer())
    distance_km = fields.Float(allow_none=True)
    wait_p90_before = fields.Float(allow_none=True)
    wait_p90_after = fields.Float(allow_none=True)


class Shortfall(ma.Schema):
    date = fields.String()
    centre = fields.String()
    officers = fields.Integer(metadata={"description": "Officers still missing."})


class Decision(ma.Schema):
    status = fields.String(metadata={"description": "accepted | declined"})
    by = fields.String(allow_none=True, metadata={"description": "Full name of the operator."})
    at = fields.String(metadata={"description": "ISO 8601, +07:00"})


class EarlierDecision(Decision):
    plan = fields.String()


class PlanAnswer(ma.Schema):
    id = fields.String(metadata={"description": "Digest of the moves: pass it to accept."})
    date = fields.String()
    moves = fields.List(fields.Nested(Move))
    shortfalls = fields.List(fields.Nested(Shortfall))
    decision = fields.Nested(
        Decision,
        allow_none=True,
        metadata={"description": "An operator's answer to this very plan; null: none yet."},
    )
    earlier = fields.List(
        fields.Nested(EarlierDecision),
        metadata={"description": "Decisions on the day's other (earlier) plans, newest first."},
    )


class DeclineAnswer(ma.Schema):
    plan = fields.String()
    date = fields.String()
    declined = fields.Boolean()


class AcceptAnswer(ma.Schema):
    plan = fields.String()
    date = fields.String()
    already_accepted = fields.Boolean()
    assignments_created = fields.Integer()
    assignments_kept = fields.Integer()
    slots_created = fields.Integer()
    slots_resized = fields.Integer()


# --- One centre over a range of days ------------------------------------------------------------


class RangeQuery(InputSchema):
    from_ = day("First local day (YYYY-MM-DD); six days before `to` if absent.", data_key="from")
    to = day("Last local day (YYYY-MM-DD); today if absent. At most 31 days.")


class CsvRangeQuery(RangeQuery):
    excel = fields.Boolean(
        load_default=False,
        error_messages=codes(invalid="invalid"),
        metadata={
            "description": "`true`: cells separated by semicolons and decimals written with "
            "a comma, as Excel reads CSV files under Vietnamese regional settings."
        },
    )


class RangeFigures(Figures):
    waits = fields.Integer(metadata={"description": "Tickets called, over which waits are taken."})
    estimates = fields.Integer(metadata={"description": "Tickets given a wait range."})
    estimates_within = fields.Integer(metadata={"description": "…whose wait fell inside it."})


class DayFigures(RangeFigures):
    date = fields.String()
    live = fields.Boolean(metadata={"description": "Folded from the tickets now."})


class ServiceFigures(RangeFigures):
    service = fields.String(metadata={"description": "Prefix of the line."})
    name = fields.String()


class HourFigures(RangeFigures):
    hour = fields.Integer(metadata={"description": "Local hour of issue, 0–23."})


class FieldFigures(RangeFigures):
    field_id = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The field (lĩnh vực): the procedure's, else the line's when it takes "
            "only one; null: not known."
        },
    )
    field = fields.String(allow_none=True, metadata={"description": "Its name; null: not known."})


class CentreRangeAnswer(ma.Schema):
    centre = fields.String()
    name = fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
    total = fields.Nested(RangeFigures)
    days = fields.List(fields.Nested(DayFigures))
    by_source = fields.Dict(keys=fields.String(), values=fields.Nested(RangeFigures))
    by_service = fields.List(fields.Nested(ServiceFigures))
    by_hour = fields.List(fields.Nested(HourFigures))
    by_field = fields.List(
        fields.Nested(FieldFigures),
        metadata={"description": "Per field with tickets in the range, most issued first."},
    )
