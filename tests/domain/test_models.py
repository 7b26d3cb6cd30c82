"""The invariants of a coordination case, each refused with the field it concerns."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reko_fhir.domain import (
    ActorType,
    CareTeam,
    CareUnit,
    Consent,
    ConsentChange,
    ConsentChangeKind,
    ConsentForm,
    CoordinationActivity,
    CoordinationCase,
    CoordinationPart,
    DomainError,
    ExternalActor,
    HsaId,
    KvaCode,
    NoticeToForsakringskassan,
    OrganisationNumber,
    Patient,
    PatientId,
    RekoRole,
    RekoStatus,
    ReturnToWorkPlan,
    SickLeavePeriod,
    SourceRef,
    StaffRole,
    TeamMember,
)

CET = timezone(timedelta(hours=1))
SYSTEM = "urn:oid:1.2.752.9999.1"
REKO = HsaId("SE2321000016-K001")
DOCTOR = HsaId("SE2321000016-L001")
FK = OrganisationNumber("2021005521")
EMPLOYER = OrganisationNumber("5566778899")


def src(rid: str) -> SourceRef:
    return SourceRef(SYSTEM, rid)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=CET)


def activity(rid: str = "A1", **change: Any) -> CoordinationActivity:
    base: dict[str, Any] = {
        "source": src(rid),
        "kva": KvaCode.GC001,
        "performed": at(5),
        "performer": REKO,
        "part": CoordinationPart.PERSONLIGT_STOD,
    }
    return CoordinationActivity(**{**base, **change})


def consent(rid: str = "S1", **change: Any) -> Consent:
    base: dict[str, Any] = {
        "source": src(rid),
        "form": ConsentForm.MUNTLIGT,
        "recorded_at": at(1),
        "valid_from": date(2025, 3, 1),
        "actors": (FK,),
    }
    return Consent(**{**base, **change})


def case(**change: Any) -> CoordinationCase:
    base: dict[str, Any] = {
        "source": src("C1"),
        "patient": Patient(PatientId.parse("19121212-1212")),
        "care_unit": CareUnit(HsaId("SE2321000016-U001"), "Vårdcentralen"),
        "status": RekoStatus.AKTIV,
        "start": date(2025, 3, 1),
        "coordinator": REKO,
        "staff": (
            StaffRole(REKO, RekoRole.REHABILITERINGSKOORDINATOR),
            StaffRole(DOCTOR, RekoRole.LAKARE),
        ),
        "actors": (
            ExternalActor(FK, ActorType.FORSAKRINGSKASSAN, "Försäkringskassan"),
            ExternalActor(EMPLOYER, ActorType.ARBETSGIVARE, "Byggvaror AB"),
        ),
    }
    return CoordinationCase(**{**base, **change})


def refused(field: str, build: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        build()
    assert caught.value.field == field, caught.value
    return caught.value


@pytest.mark.parametrize("degree", [25, 50, 75, 100])
def test_the_four_sick_leave_degrees(degree: int) -> None:
    assert SickLeavePeriod(date(2025, 1, 1), None, degree).degree == degree


@pytest.mark.parametrize("degree", [0, 10, 60, 99, 101])
def test_other_degrees_are_refused(degree: int) -> None:
    error = refused("degree", lambda: SickLeavePeriod(date(2025, 1, 1), None, degree))
    assert str(degree) in error.message


def test_a_period_cannot_end_before_it_starts() -> None:
    refused("end", lambda: SickLeavePeriod(date(2025, 2, 1), date(2025, 1, 31), 50))


def test_sick_leave_periods_may_not_overlap() -> None:
    first = SickLeavePeriod(date(2025, 1, 1), date(2025, 1, 31), 100)
    refused(
        "sick_leave_periods",
        lambda: case(sick_leave_periods=(first, SickLeavePeriod(date(2025, 1, 31), None, 50))),
    )
    open_ended = SickLeavePeriod(date(2025, 1, 1), None, 100)
    refused(
        "sick_leave_periods",
        lambda: case(sick_leave_periods=(open_ended, SickLeavePeriod(date(2025, 3, 1), None, 50))),
    )


def test_a_revocation_cannot_predate_the_consent() -> None:
    early = ConsentChange(date(2025, 2, 28), ConsentChangeKind.REVOKED)
    refused("history", lambda: consent(history=(early,)))


def test_a_consent_is_revoked_once_and_nothing_follows() -> None:
    revoke = ConsentChange(date(2025, 3, 10), ConsentChangeKind.REVOKED)
    again = ConsentChange(date(2025, 3, 12), ConsentChangeKind.REVOKED)
    later = ConsentChange(date(2025, 3, 12), ConsentChangeKind.ACTORS_CHANGED)
    refused("history", lambda: consent(history=(revoke, again)))
    refused("history", lambda: consent(history=(revoke, later)))
    assert consent(history=(revoke,)).revoked_on == date(2025, 3, 10)


def test_a_consent_is_in_force_up_to_and_including_its_revocation_day() -> None:
    revoked = consent(history=(ConsentChange(date(2025, 3, 10), ConsentChangeKind.REVOKED),))
    assert not revoked.is_in_force_on(date(2025, 2, 28))
    assert revoked.is_in_force_on(date(2025, 3, 10))
    assert not revoked.is_in_force_on(date(2025, 3, 11))


def test_points_in_time_need_an_offset() -> None:
    refused("performed", lambda: activity(performed=datetime(2025, 3, 5, 10)))
    refused("recorded_at", lambda: consent(recorded_at=datetime(2025, 3, 1, 9)))


def test_gc001_needs_a_part_and_collaboration_needs_an_actor() -> None:
    refused("part", lambda: activity(part=None))
    refused("external_actors", lambda: activity(part=CoordinationPart.EXTERN_SAMVERKAN))
    assert activity(kva=KvaCode.DV077, part=None).part is None


def test_a_care_team_has_a_coordinator_and_members_are_staff_or_actors() -> None:
    refused("members", lambda: CareTeam((TeamMember(RekoRole.LAKARE, staff=DOCTOR),)))
    refused("member", lambda: TeamMember(RekoRole.LAKARE, staff=DOCTOR, actor=FK))
    refused("member", lambda: TeamMember(RekoRole.LAKARE))
    refused("role", lambda: TeamMember(ActorType.ARBETSGIVARE, staff=DOCTOR))
    refused("role", lambda: TeamMember(RekoRole.ANNAN, actor=FK))


def test_a_plan_states_a_goal() -> None:
    refused(
        "goals", lambda: ReturnToWorkPlan(src("P1"), REKO, date(2025, 3, 2), date(2025, 3, 2), ())
    )
    refused(
        "goals[1]",
        lambda: ReturnToWorkPlan(
            src("P1"), REKO, date(2025, 3, 2), date(2025, 3, 2), ("Arbete", " ")
        ),
    )


def test_a_closed_case_has_an_end_date() -> None:
    refused("end", lambda: case(status=RekoStatus.AVSLUTAD))
    assert case(status=RekoStatus.AVSLUTAD, end=date(2025, 5, 1)).end == date(2025, 5, 1)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        (
            "activities[0].performer",
            {"activities": (activity(performer=HsaId("SE2321000016-X9")),)},
        ),
        (
            "activities[0].external_actors",
            {
                "activities": (
                    activity(
                        part=CoordinationPart.EXTERN_SAMVERKAN,
                        external_actors=(OrganisationNumber("2120003146"),),
                    ),
                )
            },
        ),
        (
            "consents[0].actors",
            {"consents": (consent(actors=(OrganisationNumber("2120003146"),)),)},
        ),
        (
            "notices[0].recipient",
            {"notices": (NoticeToForsakringskassan(src("N1"), at(6), REKO, EMPLOYER),)},
        ),
        ("coordinator", {"coordinator": HsaId("SE2321000016-X9")}),
        ("activities", {"activities": (activity("A1"), activity("A1", performed=at(6)))}),
    ],
)
def test_references_inside_a_case_must_resolve(field: str, change: dict[str, Any]) -> None:
    refused(field, lambda: case(**change))


def test_order_does_not_matter_for_equality() -> None:
    one, two = activity("A1"), activity("A2", performed=at(7))
    staff = case().staff
    assert case(activities=(one, two)) == case(activities=(two, one))
    assert case(staff=staff) == case(staff=tuple(reversed(staff)))
    assert replace(consent(), actors=(FK, EMPLOYER)) == replace(consent(), actors=(EMPLOYER, FK))


def test_a_case_repr_does_not_show_the_personnummer() -> None:
    assert "191212121212" not in repr(case())
    assert "1212-1212" not in repr(case())


def test_an_ambiguous_local_time_is_one_instant() -> None:
    """02:30 on 2020-10-25 happens twice in Stockholm; found by the round-trip property."""
    local = datetime(2020, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Stockholm"))
    fixed = datetime(2020, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert local != fixed  # Python's own rule for times in a fold (PEP 495)
    assert activity(performed=local) == activity(performed=fixed)
    assert activity(performed=local).performed.isoformat() == "2020-10-25T02:30:00+02:00"
