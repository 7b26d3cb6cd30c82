"""Consent rules over a whole case: what may be disclosed to whom, and when.

Pure functions over :class:`~reko_fhir.domain.models.CoordinationCase`; they report, they do not
raise, so a caller can show every violation at once. The FHIR-level twins of these rules (rules
1, 2 and 4 of the profile contract) live in the validation layer and work on resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from reko_fhir.domain.codes import KvaCode
from reko_fhir.domain.models import Consent, CoordinationCase, ExternalActor

FOCUS_WINDOW = timedelta(days=90)
"""Coordination focuses on the first 90 days of sick leave; later activities get a warning."""


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """A broken rule: ``field`` is the case field (``activities[3].external_actors``)."""

    field: str
    message: str
    severity: str = "error"


def consent_covers(consent: Consent, actor: ExternalActor, day: date) -> bool:
    """True when ``consent`` is in force on ``day`` and names ``actor`` itself.

    Contract 2: a consent names *which* employer; another actor of the same type is not covered.
    """
    return consent.is_in_force_on(day) and actor.org_number in consent.actors


def consent_violations(case: CoordinationCase) -> list[RuleViolation]:
    """Every disclosure and every coordination occasion (GC001, DV077, AW026) no consent covers.

    A case is one care unit's, and so are its consents: the unit rule of contract 2 (a consent
    given to another unit covers nothing here) holds by construction.
    """
    found: list[RuleViolation] = []
    for i, activity in enumerate(case.activities):
        day = activity.performed.date()
        if not any(c.is_in_force_on(day) for c in case.consents):
            found.append(
                RuleViolation(
                    f"activities[{i}]",
                    f"coordination ({activity.kva}) on {day.isoformat()} has no consent in force",
                )
            )
        for org in activity.external_actors:
            actor = case.actor(org)
            if not any(consent_covers(c, actor, day) for c in case.consents):
                found.append(
                    RuleViolation(
                        f"activities[{i}].external_actors",
                        f"no consent covers disclosure to {actor.name} ({actor.actor_type}) "
                        f"on {day.isoformat()}",
                    )
                )
    for i, notice in enumerate(case.notices):
        day = notice.sent.date()
        actor = case.actor(notice.recipient)
        if not any(consent_covers(c, actor, day) for c in case.consents):
            found.append(
                RuleViolation(
                    f"notices[{i}].recipient",
                    f"no consent covers the notice to {actor.name} on {day.isoformat()}",
                )
            )
    found.extend(focus_warnings(case))
    return found


def focus_warnings(case: CoordinationCase) -> list[RuleViolation]:
    """GC001 occasions more than 90 days after the first sick-leave start of this case (its own
    episode: contract 2 counts from no other), a guide, not a stop."""
    if not case.sick_leave_periods:
        return []
    first = case.sick_leave_periods[0].start
    return [
        RuleViolation(
            f"activities[{i}].performed",
            f"coordination {(a.performed.date() - first).days} days after the sick leave began "
            "(the focus is the first 90 days)",
            severity="warning",
        )
        for i, a in enumerate(case.activities)
        if a.kva is KvaCode.GC001 and a.performed.date() - first > FOCUS_WINDOW
    ]
