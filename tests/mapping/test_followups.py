"""Which of a plan's activities are due, and which one a performed Procedure carries out
(:mod:`reko_fhir.mapping.followups`), on FHIR JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

from reko_fhir.mapping.followups import carried_out, due_activities, due_date
from tests.followups_data import follow_up_plan, performed, planned

Json = dict[str, Any]


def plan(*activities: Json) -> Json:
    return {**follow_up_plan("Patient/p", "PractitionerRole/r"), "activity": list(activities)}


def test_the_due_day_of_each_schedule() -> None:
    assert due_date({"scheduledPeriod": {"start": "2026-03-02", "end": "2026-03-09"}}) == date(
        2026, 3, 2
    )
    events = {"event": ["2026-05-15T10:00:00+02:00", "2026-04-01"]}
    assert due_date({"scheduledTiming": events}) == date(2026, 4, 1)
    bounds = {"repeat": {"boundsPeriod": {"start": "2026-06"}}}
    assert due_date({"scheduledTiming": bounds}) == date(2026, 6, 1)
    assert due_date({"scheduledString": "när patienten hör av sig"}) is None
    assert due_date({"scheduledPeriod": {"start": "not a date"}}) is None


def test_open_follow_ups_earliest_first_undated_last_dv077_and_closed_ones_left_out() -> None:
    undated = planned("AW026", "2026-01-01")
    del undated["detail"]["scheduledPeriod"]
    done = planned("AW026", "2026-01-05")
    done["detail"]["status"] = "completed"
    cancelled = planned("GC001", "2026-01-06", "personligt-stod")
    cancelled["detail"]["status"] = "cancelled"
    dv077 = planned("DV077", "2026-01-01")
    found = due_activities(
        plan(
            undated,
            planned("AW026", "2026-03-01"),
            done,
            cancelled,
            dv077,
            planned("GC001", "2026-02-01"),
        )
    )
    assert [(d.index, d.code, d.due) for d in found] == [
        (5, "GC001", date(2026, 2, 1)),
        (1, "AW026", date(2026, 3, 1)),
        (0, "AW026", None),
    ]


def test_a_performed_procedure_completes_one_activity_once() -> None:
    procedure = performed("Patient/p", "PractitionerRole/r", "Organization/o", "CarePlan/c")
    procedure["id"] = "x"
    linked = carried_out(plan(planned("AW026", "2026-03-01")), procedure, "Procedure/x")
    assert linked is not None
    assert linked["activity"][0]["outcomeReference"] == [{"reference": "Procedure/x"}]
    assert linked["activity"][0]["detail"]["status"] == "completed"
    assert carried_out(linked, procedure, "Procedure/x") is None  # linked already
    # No open AW026 left for another Procedure; a DV077 or an unfinished one completes nothing.
    assert carried_out(linked, procedure, "Procedure/y") is None
    dv077 = {
        **procedure,
        "code": {"coding": [{"system": procedure["code"]["coding"][0]["system"], "code": "DV077"}]},
    }
    assert carried_out(plan(planned("DV077", "2026-03-01")), dv077, "Procedure/x") is None
    unfinished = {**procedure, "status": "in-progress"}
    assert carried_out(plan(planned("AW026", "2026-03-01")), unfinished, "Procedure/x") is None
