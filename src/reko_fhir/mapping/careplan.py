"""The rehabilitation plan as CarePlan; never with ``addresses`` or a reason (no diagnosis).

https://hl7.org/fhir/R4/careplan.html. The category says whether the plan is for returning to
work or for entering working life (contract 2). Goals are contained Goal resources; each activity
detail is one of: a planned sick-leave step (KVÅ DV077 + ``sick-leave-period``), a planned
coordination activity (KVÅ GC001 + own ``coordination-part``), or a follow-up (KVÅ AW026).

A detail's status says what the journal shows of it (https://hl7.org/fhir/R4/valueset-care-plan-activity-status.html):
``completed`` when a journaled activity carries it out (a completed AW026 on the follow-up's day;
a completed GC001 of the same part, and with the planned actor, on the planned day) or, for a
sick-leave step, when the case closed after the step ended; ``unknown`` for what a closed case
never recorded; ``scheduled`` while the case is open. The journal links a performed activity to
the plan by nothing but that rule (none of the exports carries a reference), so the same rule
links them in FHIR: the activity's ``outcomeReference`` names the Procedures that carry it out
(https://hl7.org/fhir/R4/careplan-definitions.html#CarePlan.activity.outcomeReference), and
each of those is ``basedOn`` the plan (:func:`carries_out`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from reko_fhir.domain import (
    ActivityStatus,
    CarePlanCategory,
    CoordinationActivity,
    CoordinationCase,
    CoordinationPart,
    KvaCode,
    PlannedActivity,
    ReturnToWorkPlan,
    SickLeavePeriod,
)
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.consent import source_of
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.fhir_reader import Element
from reko_fhir.mapping.sick_leave import sick_leave_from_fhir, sick_leave_to_fhir

Resource = dict[str, Any]


def _done(case: CoordinationCase) -> list[CoordinationActivity]:
    return [a for a in case.activities if a.status is ActivityStatus.COMPLETED]


def _status(case: CoordinationCase, carried_out: bool) -> str:
    if carried_out:
        return "completed"
    return "unknown" if case.status.is_closed else "scheduled"


def _step(case: CoordinationCase, period: SickLeavePeriod) -> dict[str, Any]:
    ended = case.end is not None and period.end is not None and period.end <= case.end
    return {
        "extension": [sick_leave_to_fhir(period)],
        "code": c.kva(KvaCode.DV077),
        "status": _status(case, ended),
    }


def _carried_out(case: CoordinationCase, planned: PlannedActivity) -> list[CoordinationActivity]:
    """The completed GC001s of the planned activity's part (and actor) on its day."""
    if planned.planned_on is None:
        return []
    return [
        a
        for a in _done(case)
        if a.kva is KvaCode.GC001
        and a.part is planned.part
        and a.performed.date() == planned.planned_on
        and (planned.actor is None or planned.actor in a.external_actors)
    ]


def _held(case: CoordinationCase, day: date) -> list[CoordinationActivity]:
    """The completed AW026s on a follow-up's day."""
    return [a for a in _done(case) if a.kva is KvaCode.AW026 and a.performed.date() == day]


def carries_out(case: CoordinationCase, activity: CoordinationActivity) -> bool:
    """Whether ``activity`` carries out a follow-up or planned activity of the case's plan
    (its Procedure is then ``basedOn`` the plan)."""
    plan = case.plan
    if plan is None:
        return False
    return any(activity in _held(case, day) for day in plan.follow_ups) or any(
        activity in _carried_out(case, planned) for planned in plan.activities
    )


def _outcomes(activity: dict[str, Any], done: list[CoordinationActivity], urls: CaseUrls) -> None:
    if done:
        activity["outcomeReference"] = [
            c.reference(urls.record("Procedure", a.source)) for a in done
        ]


def _follow_up(case: CoordinationCase, day: date) -> dict[str, Any]:
    return {
        "code": c.kva(KvaCode.AW026),
        "status": _status(case, bool(_held(case, day))),
        "scheduledPeriod": {"start": day.isoformat()},
    }


def _planned(case: CoordinationCase, activity: PlannedActivity, urls: CaseUrls) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "extension": [
            {"url": c.EXT_COORDINATION_PART, "valueCoding": c.coding(c.CS_PART, activity.part)}
        ],
        "code": c.kva(KvaCode.GC001),
        "status": _status(case, bool(_carried_out(case, activity))),
    }
    if activity.planned_on is not None:
        detail["scheduledPeriod"] = {"start": activity.planned_on.isoformat()}
    if activity.actor is not None:
        detail["performer"] = [c.reference(urls.actor(activity.actor))]
    detail["description"] = activity.description
    return detail


def careplan_to_fhir(case: CoordinationCase, plan: ReturnToWorkPlan, urls: CaseUrls) -> Resource:
    period = {"start": plan.start.isoformat()}
    if plan.end is not None:
        period["end"] = plan.end.isoformat()
    activities: list[dict[str, Any]] = [
        *({"detail": _step(case, p)} for p in plan.sick_leave_steps),
        *({"detail": _planned(case, a, urls)} for a in plan.activities),
        *({"detail": _follow_up(case, d)} for d in plan.follow_ups),
    ]
    done = [
        *([] for _ in plan.sick_leave_steps),
        *(_carried_out(case, a) for a in plan.activities),
        *(_held(case, d) for d in plan.follow_ups),
    ]
    for activity, procedures in zip(activities, done, strict=True):
        _outcomes(activity, procedures, urls)
    out: Resource = {
        "resourceType": "CarePlan",
        "meta": c.profile("CarePlan"),
        "contained": [
            {
                "resourceType": "Goal",
                "id": f"goal-{i}",
                "lifecycleStatus": "active",
                "description": {"text": goal},
                "subject": c.reference(urls.patient),
            }
            for i, goal in enumerate(plan.goals, start=1)
        ],
        "identifier": [c.identifier(plan.source.system, plan.source.record_id)],
        "status": "completed" if case.status.is_closed else "active",
        "intent": "plan",
        "category": [c.concept(c.CS_CAREPLAN_CATEGORY, plan.category)],
        "subject": c.reference(urls.patient),
        "period": period,
        "created": plan.created.isoformat(),
        "author": c.reference(urls.staff(plan.author)),
    }
    if case.care_team is not None:
        out["careTeam"] = [c.reference(urls.care_team)]
    out["goal"] = [{"reference": f"#goal-{i}"} for i in range(1, len(plan.goals) + 1)]
    if activities:
        # outcomeReference precedes detail, in the element order of CarePlan.activity
        out["activity"] = [
            {k: a[k] for k in ("outcomeReference", "detail") if k in a} for a in activities
        ]
    return out


def careplan_from_fhir(res: Element, index: BundleIndex) -> ReturnToWorkPlan:
    contained = {g.data.get("id"): g for g in res.children("contained")}
    goals = []
    for ref in res.children("goal"):
        key = ref.need_text("reference").removeprefix("#")
        if key not in contained:
            raise ref.fail("reference", f"'#{key}' is not a contained Goal")
        goals.append(contained[key].need("description").need_text("text"))
    steps, planned, follow_ups = [], [], []
    for activity in res.children("activity"):
        detail = activity.need("detail")
        code = detail.need_code_in("code", c.KVA, KvaCode)
        scheduled = detail.child("scheduledPeriod")
        if code is KvaCode.DV077:
            ext = detail.extension(c.EXT_SICK_LEAVE)
            if ext is None:
                raise detail.fail("extension", "a DV077 detail carries a sick-leave-period")
            steps.append(sick_leave_from_fhir(ext))
        elif code is KvaCode.AW026:
            if scheduled is None:
                raise detail.fail("scheduledPeriod", "a follow-up has a date")
            follow_ups.append(scheduled.need_date("start"))
        else:
            part = detail.extension(c.EXT_COORDINATION_PART)
            if part is None:
                raise detail.fail("extension", "a planned activity carries coordination-part")
            performer = detail.child("performer")
            planned.append(
                PlannedActivity(
                    detail.need_text("description"),
                    part.need("valueCoding").enum("code", CoordinationPart),
                    scheduled.need_date("start") if scheduled else None,
                    index.actor_of(performer, detail, "performer[0]") if performer else None,
                )
            )
    period = res.need("period")
    category = res.coding_in("category", c.CS_CAREPLAN_CATEGORY)
    return ReturnToWorkPlan(
        source=source_of(res),
        author=index.staff_of(res.child("author"), res, "author"),
        created=res.need_date("created"),
        start=period.need_date("start"),
        goals=tuple(goals),
        end=period.date("end"),
        sick_leave_steps=tuple(steps),
        activities=tuple(planned),
        follow_ups=tuple(follow_ups),
        category=(
            category.enum("code", CarePlanCategory)
            if category
            else CarePlanCategory.ATERGANG_I_ARBETE
        ),
    )
