"""Consent rules over a case: disclosure needs a covering consent; the 90-day focus warns."""

from __future__ import annotations

from datetime import date

from reko_fhir.domain import (
    ActorType,
    ConsentChangeKind,
    CoordinationActivity,
    CoordinationPart,
    ExternalActor,
    KvaCode,
    OrganisationNumber,
    SickLeavePeriod,
    consent_violations,
    focus_warnings,
)
from tests.domain.test_models import (
    AF,
    EMPLOYER,
    FK,
    activity,
    at,
    case,
    change,
    consent,
    notice,
)

OTHER_EMPLOYER = OrganisationNumber("5561234500")
ACTORS = (
    *case().actors,
    ExternalActor(AF, ActorType.ARBETSFORMEDLINGEN, "Arbetsförmedlingen"),
    ExternalActor(OTHER_EMPLOYER, ActorType.ARBETSGIVARE, "Annan AB"),
)
REVOKED_ON_10 = consent(history=(change(date(2025, 3, 10)),))


def external(rid: str, day: int, *orgs: OrganisationNumber) -> CoordinationActivity:
    return activity(
        rid, performed=at(day), part=CoordinationPart.EXTERN_SAMVERKAN, external_actors=orgs
    )


def fields(**parts: object) -> list[str]:
    return sorted(v.field for v in consent_violations(case(actors=ACTORS, **parts)))


# --- disclosure to external actors (rule 1) -------------------------------------------------


def test_disclosure_to_a_named_actor_is_covered() -> None:
    assert fields(consents=(consent(),), activities=(external("A1", 5, FK),)) == []


def test_disclosure_to_an_actor_the_consent_does_not_name_is_an_error() -> None:
    (violation,) = consent_violations(
        case(consents=(consent(),), activities=(external("A1", 5, EMPLOYER),))
    )
    assert violation.field == "activities[0].external_actors"
    assert violation.severity == "error"
    assert "Byggvaror AB" in violation.message
    assert "2025-03-05" in violation.message


def test_each_uncovered_actor_is_reported() -> None:
    found = consent_violations(
        case(
            actors=ACTORS, consents=(consent(),), activities=(external("A1", 5, FK, EMPLOYER, AF),)
        )
    )
    assert [v.field for v in found] == ["activities[0].external_actors"] * 2
    assert sorted(v.message.split(" (")[0] for v in found) == [
        "no consent covers disclosure to Arbetsförmedlingen",
        "no consent covers disclosure to Byggvaror AB",
    ]


def test_an_actor_of_the_same_type_is_not_covered() -> None:
    # Contract 2: a consent names *which* employer (contract 1 let the whole type through).
    assert fields(
        consents=(consent(actors=(EMPLOYER,)),), activities=(external("A1", 5, OTHER_EMPLOYER),)
    ) == ["activities[0].external_actors"]
    assert (
        fields(
            consents=(consent(actors=(EMPLOYER, OTHER_EMPLOYER)),),
            activities=(external("A1", 5, OTHER_EMPLOYER),),
        )
        == []
    )


def test_an_actor_of_another_type_is_not_covered() -> None:
    assert fields(consents=(consent(actors=(FK,)),), activities=(external("A1", 5, AF),)) == [
        "activities[0].external_actors"
    ]


def test_a_consent_without_actors_covers_coordination_but_no_disclosure() -> None:
    assert fields(consents=(consent(actors=()),), activities=(activity(),)) == []
    assert fields(consents=(consent(actors=()),), activities=(external("A1", 5, FK),)) == [
        "activities[0].external_actors"
    ]


def test_any_one_covering_consent_is_enough() -> None:
    consents = (consent("S1", actors=(FK,)), consent("S2", actors=(EMPLOYER,)))
    assert fields(consents=consents, activities=(external("A1", 5, FK, EMPLOYER),)) == []


def test_a_consent_covers_nothing_before_it_was_given() -> None:
    late = consent(valid_from=date(2025, 3, 6), recorded_at=at(6))
    assert fields(consents=(late,), activities=(external("A1", 5, FK),)) == [
        "activities[0]",
        "activities[0].external_actors",
    ]
    assert fields(consents=(late,), activities=(external("A1", 6, FK),)) == []


def test_revocation_covers_its_own_day_but_not_after() -> None:
    assert fields(consents=(REVOKED_ON_10,), activities=(external("A1", 10, FK),)) == []
    assert fields(consents=(REVOKED_ON_10,), activities=(external("A1", 11, FK),)) == [
        "activities[0]",
        "activities[0].external_actors",
    ]


def test_a_change_of_actors_is_not_a_revocation() -> None:
    changed = consent(history=(change(date(2025, 3, 3), ConsentChangeKind.ACTORS_CHANGED),))
    assert fields(consents=(changed,), activities=(external("A1", 20, FK),)) == []


def test_a_later_consent_covers_after_an_earlier_revocation() -> None:
    renewed = consent("S2", recorded_at=at(12), valid_from=date(2025, 3, 12))
    consents = (REVOKED_ON_10, renewed)
    assert fields(consents=consents, activities=(external("A1", 11, FK),)) != []
    assert fields(consents=consents, activities=(external("A1", 12, FK),)) == []


def test_violations_point_at_the_activity_in_canonical_order() -> None:
    activities = (external("A2", 12, FK), external("A1", 5, FK))
    assert fields(consents=(REVOKED_ON_10,), activities=activities) == [
        "activities[1]",
        "activities[1].external_actors",
    ]


# --- coordination needs consent (rule 2) ----------------------------------------------------


def test_coordination_without_any_consent_is_an_error() -> None:
    (violation,) = consent_violations(case(activities=(activity(),)))
    assert violation.field == "activities[0]"
    assert violation.severity == "error"
    assert "no consent in force" in violation.message
    assert "2025-03-05" in violation.message


def test_coordination_after_revocation_is_an_error() -> None:
    assert fields(consents=(REVOKED_ON_10,), activities=(activity(performed=at(10)),)) == []
    assert fields(consents=(REVOKED_ON_10,), activities=(activity(performed=at(11)),)) == [
        "activities[0]"
    ]


def test_the_plan_and_its_follow_up_need_a_consent_in_force_too() -> None:
    # Contract 2: every coordination Procedure (GC001, DV077, AW026) needs a consent.
    plan_made = activity(kva=KvaCode.DV077, part=None)
    followed_up = activity("A2", kva=KvaCode.AW026, part=None)
    assert fields(activities=(plan_made, followed_up)) == ["activities[0]", "activities[1]"]
    (first, _) = consent_violations(case(activities=(plan_made, followed_up)))
    assert "coordination (DV077)" in first.message
    assert fields(consents=(consent(),), activities=(plan_made, followed_up)) == []


# --- notice to Försäkringskassan --------------------------------------------------------------


def test_a_notice_to_fk_needs_consent() -> None:
    (violation,) = consent_violations(case(notices=(notice(),)))
    assert violation.field == "notices[0].recipient"
    assert violation.severity == "error"
    assert "Försäkringskassan" in violation.message
    assert consent_violations(case(consents=(consent(),), notices=(notice(),))) == []


def test_a_consent_that_names_only_the_employer_does_not_cover_a_notice() -> None:
    assert fields(consents=(consent(actors=(EMPLOYER,)),), notices=(notice(),)) == [
        "notices[0].recipient"
    ]


def test_a_notice_after_revocation_is_an_error() -> None:
    assert fields(consents=(REVOKED_ON_10,), notices=(notice(sent=at(10)),)) == []
    assert fields(consents=(REVOKED_ON_10,), notices=(notice(sent=at(11)),)) == [
        "notices[0].recipient"
    ]


# --- the 90-day focus (rule 4) ------------------------------------------------------------

SICK_FROM_DEC_5 = (SickLeavePeriod(date(2024, 12, 5), None, 100),)  # 2025-03-05 is day 90


def test_the_90_day_focus_warns_after_day_90_only() -> None:
    on_day_90 = case(sick_leave_periods=SICK_FROM_DEC_5, activities=(activity(performed=at(5)),))
    assert focus_warnings(on_day_90) == []
    on_day_91 = case(sick_leave_periods=SICK_FROM_DEC_5, activities=(activity(performed=at(6)),))
    (warning,) = focus_warnings(on_day_91)
    assert warning.severity == "warning"
    assert warning.field == "activities[0].performed"
    assert "91 days" in warning.message


def test_the_focus_counts_from_the_first_sick_leave_period() -> None:
    periods = (
        SickLeavePeriod(date(2025, 1, 1), None, 50),
        SickLeavePeriod(date(2024, 12, 5), date(2024, 12, 31), 100),
    )
    late = case(sick_leave_periods=periods, activities=(activity(performed=at(6)),))
    assert [w.field for w in focus_warnings(late)] == ["activities[0].performed"]


def test_the_focus_concerns_gc001_only_and_needs_a_sick_leave() -> None:
    plan_made = activity(kva=KvaCode.DV077, part=None, performed=at(20))
    assert focus_warnings(case(sick_leave_periods=SICK_FROM_DEC_5, activities=(plan_made,))) == []
    assert focus_warnings(case(activities=(activity(performed=at(20)),))) == []


def test_consent_violations_also_carry_the_focus_warning() -> None:
    late = case(
        consents=(consent(),),
        sick_leave_periods=SICK_FROM_DEC_5,
        activities=(activity(performed=at(6)),),
    )
    (warning,) = consent_violations(late)
    assert (warning.field, warning.severity) == ("activities[0].performed", "warning")
