"""Consent rules over a case: disclosure needs a covering consent; the 90-day focus warns."""

from __future__ import annotations

from datetime import date

from reko_fhir.domain import (
    ActorType,
    ConsentChange,
    ConsentChangeKind,
    CoordinationPart,
    ExternalActor,
    NoticeToForsakringskassan,
    OrganisationNumber,
    SickLeavePeriod,
    consent_violations,
    focus_warnings,
)
from tests.domain.test_models import EMPLOYER, FK, REKO, activity, at, case, consent, src


def external(rid: str, day: int, *orgs: object) -> object:
    return activity(
        rid, performed=at(day), part=CoordinationPart.EXTERN_SAMVERKAN, external_actors=orgs
    )


def test_disclosure_to_a_named_actor_is_covered() -> None:
    assert (
        consent_violations(case(consents=(consent(),), activities=(external("A1", 5, FK),))) == []
    )


def test_disclosure_to_an_unnamed_actor_is_an_error() -> None:
    (violation,) = consent_violations(
        case(consents=(consent(),), activities=(external("A1", 5, EMPLOYER),))
    )
    assert violation.field == "activities[0].external_actors"
    assert violation.severity == "error"
    assert "Byggvaror AB" in violation.message


def test_an_actor_of_the_same_type_is_covered() -> None:
    other_employer = OrganisationNumber("5561234500")
    actors = (*case().actors, ExternalActor(other_employer, ActorType.ARBETSGIVARE, "Annan AB"))
    covered = case(
        actors=actors,
        consents=(consent(actors=(EMPLOYER,)),),
        activities=(external("A1", 5, other_employer),),
    )
    assert consent_violations(covered) == []


def test_revocation_covers_its_own_day_but_not_after() -> None:
    revoked = consent(history=(ConsentChange(date(2025, 3, 10), ConsentChangeKind.REVOKED),))
    on_the_day = case(consents=(revoked,), activities=(external("A1", 10, FK),))
    assert consent_violations(on_the_day) == []
    after = case(consents=(revoked,), activities=(external("A1", 11, FK),))
    fields = sorted(v.field for v in consent_violations(after))
    assert fields == ["activities[0]", "activities[0].external_actors"]


def test_coordination_without_any_consent_is_an_error() -> None:
    (violation,) = consent_violations(case(activities=(activity(),)))
    assert violation.field == "activities[0]"
    assert "no consent in force" in violation.message


def test_a_notice_to_fk_needs_consent() -> None:
    notice = NoticeToForsakringskassan(src("N1"), at(6), REKO, FK)
    (violation,) = consent_violations(case(notices=(notice,)))
    assert violation.field == "notices[0].recipient"
    assert consent_violations(case(consents=(consent(),), notices=(notice,))) == []


def test_the_90_day_focus_warns_after_day_90_only() -> None:
    sick = (SickLeavePeriod(date(2024, 12, 5), None, 100),)  # 2025-03-05 is day 90 after
    assert (
        focus_warnings(case(sick_leave_periods=sick, activities=(activity(performed=at(5)),))) == []
    )
    (warning,) = focus_warnings(
        case(sick_leave_periods=sick, activities=(activity(performed=at(6)),))
    )
    assert warning.severity == "warning"
    assert warning.field == "activities[0].performed"
    assert "91 days" in warning.message
