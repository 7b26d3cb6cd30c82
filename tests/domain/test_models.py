"""The invariants of a coordination case, each refused with the field it concerns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
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
    PlannedActivity,
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
STRANGER = HsaId("SE2321000016-X9")
FK = OrganisationNumber("2021005521")
AF = OrganisationNumber("2021002114")
EMPLOYER = OrganisationNumber("5566778899")
UNKNOWN_ORG = OrganisationNumber("2120003146")


# --- builders -----------------------------------------------------------------------------


def src(rid: str) -> SourceRef:
    return SourceRef(SYSTEM, rid)


def at(day: int, hour: int = 10) -> datetime:
    """A point in March 2025, Swedish winter time."""
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


def notice(rid: str = "N1", **change: Any) -> NoticeToForsakringskassan:
    base: dict[str, Any] = {"source": src(rid), "sent": at(6), "sender": REKO, "recipient": FK}
    return NoticeToForsakringskassan(**{**base, **change})


def plan(**change: Any) -> ReturnToWorkPlan:
    base: dict[str, Any] = {
        "source": src("P1"),
        "author": REKO,
        "created": date(2025, 3, 2),
        "start": date(2025, 3, 2),
        "goals": ("Tillbaka i arbete 50 %",),
    }
    return ReturnToWorkPlan(**{**base, **change})


def change(on: date, kind: ConsentChangeKind = ConsentChangeKind.REVOKED) -> ConsentChange:
    return ConsentChange(on, kind)


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


def refused(field: str, build: Callable[[], object]) -> DomainError:
    with pytest.raises(DomainError) as caught:
        build()
    assert caught.value.field == field, caught.value
    return caught.value


def test_the_builders_make_a_valid_case() -> None:
    built = case(
        consents=(consent(),),
        activities=(activity(),),
        notices=(notice(),),
        plan=plan(),
        care_team=CareTeam((TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, staff=REKO),)),
    )
    assert built.staff_member(REKO).role is RekoRole.REHABILITERINGSKOORDINATOR
    assert built.actor(FK).actor_type is ActorType.FORSAKRINGSKASSAN


# --- sick leave -----------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [25, 50, 75, 100])
def test_the_four_sick_leave_degrees(degree: int) -> None:
    assert SickLeavePeriod(date(2025, 1, 1), None, degree).degree == degree


@pytest.mark.parametrize("degree", [0, 10, 33, 60, 99, 101, -25, 200])
def test_other_degrees_are_refused(degree: int) -> None:
    error = refused("degree", lambda: SickLeavePeriod(date(2025, 1, 1), None, degree))
    assert str(degree) in error.message


def test_a_period_cannot_end_before_it_starts() -> None:
    refused("end", lambda: SickLeavePeriod(date(2025, 2, 1), date(2025, 1, 31), 50))
    one_day = SickLeavePeriod(date(2025, 2, 1), date(2025, 2, 1), 50)
    assert one_day.end == one_day.start


def test_sick_leave_periods_may_not_overlap() -> None:
    first = SickLeavePeriod(date(2025, 1, 1), date(2025, 1, 31), 100)
    sharing_a_day = SickLeavePeriod(date(2025, 1, 31), None, 50)
    refused("sick_leave_periods", lambda: case(sick_leave_periods=(first, sharing_a_day)))
    refused("sick_leave_periods", lambda: case(sick_leave_periods=(sharing_a_day, first)))
    open_ended = SickLeavePeriod(date(2025, 1, 1), None, 100)
    later = SickLeavePeriod(date(2025, 3, 1), None, 50)
    refused("sick_leave_periods", lambda: case(sick_leave_periods=(open_ended, later)))
    same_start = SickLeavePeriod(date(2025, 1, 1), date(2025, 1, 10), 50)
    refused("sick_leave_periods", lambda: case(sick_leave_periods=(first, same_start)))


def test_adjacent_periods_are_kept_in_date_order() -> None:
    first = SickLeavePeriod(date(2025, 1, 1), date(2025, 1, 31), 100)
    then = SickLeavePeriod(date(2025, 2, 1), None, 50)
    assert case(sick_leave_periods=(then, first)).sick_leave_periods == (first, then)


def test_planned_sick_leave_steps_may_not_overlap() -> None:
    steps = (
        SickLeavePeriod(date(2025, 3, 1), date(2025, 3, 31), 100),
        SickLeavePeriod(date(2025, 3, 15), date(2025, 4, 30), 50),
    )
    refused("sick_leave_steps", lambda: plan(sick_leave_steps=steps))


# --- consent ----------------------------------------------------------------------------------


def test_a_revocation_cannot_predate_the_consent() -> None:
    refused("history", lambda: consent(history=(change(date(2025, 2, 28)),)))
    early = change(date(2025, 2, 28), ConsentChangeKind.ACTORS_CHANGED)
    refused("history", lambda: consent(history=(early,)))
    assert consent(history=(change(date(2025, 3, 1)),)).revoked_on == date(2025, 3, 1)


def test_a_consent_is_revoked_at_most_once() -> None:
    twice = (change(date(2025, 3, 10)), change(date(2025, 3, 12)))
    refused("history", lambda: consent(history=twice))
    refused("history", lambda: consent(history=tuple(reversed(twice))))


def test_nothing_changes_a_consent_after_its_revocation() -> None:
    revoke = change(date(2025, 3, 10))
    later = change(date(2025, 3, 12), ConsentChangeKind.ACTORS_CHANGED)
    refused("history", lambda: consent(history=(revoke, later)))
    refused("history", lambda: consent(history=(later, revoke)))  # input order is irrelevant
    before = change(date(2025, 3, 5), ConsentChangeKind.ACTORS_CHANGED)
    assert consent(history=(revoke, before)).history == (before, revoke)


def test_a_consent_is_given_once() -> None:
    given = change(date(2025, 3, 1), ConsentChangeKind.GIVEN)
    again = change(date(2025, 3, 4), ConsentChangeKind.GIVEN)
    refused("history", lambda: consent(history=(given, again)))


def test_a_consent_is_in_force_from_its_start_up_to_and_including_its_revocation_day() -> None:
    revoked = consent(history=(change(date(2025, 3, 10)),))
    assert revoked.revoked_on == date(2025, 3, 10)
    assert not revoked.is_in_force_on(date(2025, 2, 28))
    assert revoked.is_in_force_on(date(2025, 3, 1))
    assert revoked.is_in_force_on(date(2025, 3, 10))
    assert not revoked.is_in_force_on(date(2025, 3, 11))
    standing = consent(history=(change(date(2025, 3, 5), ConsentChangeKind.ACTORS_CHANGED),))
    assert standing.revoked_on is None
    assert standing.is_in_force_on(date(2030, 1, 1))


# --- points in time -------------------------------------------------------------------------


def test_points_in_time_need_an_offset() -> None:
    refused("performed", lambda: activity(performed=datetime(2025, 3, 5, 10)))
    refused("recorded_at", lambda: consent(recorded_at=datetime(2025, 3, 1, 9)))
    refused("sent", lambda: notice(sent=datetime(2025, 3, 6, 9)))


def test_an_offset_is_kept_as_given() -> None:
    utc = activity(performed=datetime(2025, 3, 5, 9, tzinfo=UTC))
    assert utc == activity(performed=at(5, 10))  # the same instant
    assert utc.performed.isoformat() == "2025-03-05T09:00:00+00:00"


def test_an_ambiguous_local_time_is_one_instant() -> None:
    """02:30 on 2020-10-25 happens twice in Stockholm; found by the round-trip property."""
    local = datetime(2020, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Stockholm"))
    fixed = datetime(2020, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert local != fixed  # Python's own rule for times in a fold (PEP 495)
    assert activity(performed=local) == activity(performed=fixed)
    assert activity(performed=local).performed.isoformat() == "2020-10-25T02:30:00+02:00"


# --- activities -------------------------------------------------------------------------------


def test_gc001_needs_a_part() -> None:
    refused("part", lambda: activity(part=None))
    assert activity(kva=KvaCode.DV077, part=None).part is None
    assert activity(kva=KvaCode.AW026, part=None).part is None


def test_collaboration_needs_an_external_actor() -> None:
    refused("external_actors", lambda: activity(part=CoordinationPart.EXTERN_SAMVERKAN))
    with_actor = activity(part=CoordinationPart.EXTERN_SAMVERKAN, external_actors=(FK,))
    assert with_actor.external_actors == (FK,)


def test_a_blank_note_is_refused() -> None:
    refused("note", lambda: activity(note="   "))


# --- care team --------------------------------------------------------------------------------


def test_a_care_team_may_lack_a_rehabilitation_coordinator() -> None:
    # Contract 2: doctors, nurses and others may perform the coordination (a warning, no error).
    without = CareTeam((TeamMember(RekoRole.LAKARE, staff=DOCTOR),))
    assert not without.has_coordinator
    team = CareTeam(
        (
            TeamMember(RekoRole.LAKARE, staff=DOCTOR),
            TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, staff=REKO),
        )
    )
    assert len(team.members) == 2
    assert team.has_coordinator


def test_a_team_member_is_either_staff_or_an_actor() -> None:
    refused("member", lambda: TeamMember(RekoRole.LAKARE, staff=DOCTOR, actor=FK))
    refused("member", lambda: TeamMember(ActorType.FORSAKRINGSKASSAN, staff=DOCTOR, actor=FK))
    refused("member", lambda: TeamMember(RekoRole.LAKARE))


def test_a_team_member_role_matches_its_kind() -> None:
    refused("role", lambda: TeamMember(ActorType.ARBETSGIVARE, staff=DOCTOR))
    refused("role", lambda: TeamMember(RekoRole.ANNAN, actor=FK))
    assert TeamMember(ActorType.FORSAKRINGSKASSAN, actor=FK).actor == FK


def test_a_staff_member_takes_a_reko_role() -> None:
    refused("role", lambda: StaffRole(DOCTOR, ActorType.ARBETSGIVARE))  # type: ignore[arg-type]


# --- plan -------------------------------------------------------------------------------------


def test_a_plan_states_a_goal() -> None:
    refused("goals", lambda: plan(goals=()))
    refused("goals[1]", lambda: plan(goals=("Arbete", " ")))


def test_a_plan_cannot_end_before_it_starts() -> None:
    refused("end", lambda: plan(end=date(2025, 3, 1)))
    assert plan(end=date(2025, 3, 2)).end == date(2025, 3, 2)


def test_a_planned_activity_is_described() -> None:
    refused("description", lambda: PlannedActivity("", CoordinationPart.PERSONLIGT_STOD))
    assert PlannedActivity("Möte", CoordinationPart.PERSONLIGT_STOD).planned_on is None


# --- the case -------------------------------------------------------------------------------


def test_a_case_cannot_end_before_it_starts() -> None:
    refused("end", lambda: case(end=date(2025, 2, 28)))


@pytest.mark.parametrize(
    "status", [RekoStatus.AVSLUTAD, RekoStatus.AVBOJT, RekoStatus.LAMNAS_UTAN_ATGARD]
)
def test_a_closed_case_has_an_end_date(status: RekoStatus) -> None:
    refused("end", lambda: case(status=status))
    assert case(status=status, end=date(2025, 5, 1)).end == date(2025, 5, 1)


@pytest.mark.parametrize(
    "status",
    [RekoStatus.KONTAKTAD, RekoStatus.AKTIV, RekoStatus.UPPFOLJNING, RekoStatus.MEDICINSK_REHAB],
)
def test_an_open_case_needs_no_end_date(status: RekoStatus) -> None:
    assert case(status=status).end is None


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("coordinator", {"coordinator": STRANGER}),
        ("activities[0].performer", {"activities": (activity(performer=STRANGER),)}),
        (
            "activities[0].external_actors",
            {
                "activities": (
                    activity(
                        part=CoordinationPart.EXTERN_SAMVERKAN, external_actors=(UNKNOWN_ORG,)
                    ),
                )
            },
        ),
        ("consents[0].actors", {"consents": (consent(actors=(FK, UNKNOWN_ORG)),)}),
        ("notices[0].sender", {"notices": (notice(sender=STRANGER),)}),
        ("notices[0].recipient", {"notices": (notice(recipient=UNKNOWN_ORG),)}),
        ("notices[0].recipient", {"notices": (notice(recipient=EMPLOYER),)}),
        ("plan.author", {"plan": plan(author=STRANGER)}),
        (
            "plan.activities[0].actor",
            {
                "plan": plan(
                    activities=(
                        PlannedActivity("Möte", CoordinationPart.EXTERN_SAMVERKAN, actor=AF),
                    )
                )
            },
        ),
        (
            "care_team.members[0].staff",
            {"care_team": CareTeam((TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, STRANGER),))},
        ),
        (
            "care_team.members[0].actor",
            {
                "care_team": CareTeam(
                    (
                        TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, REKO),
                        TeamMember(ActorType.ARBETSFORMEDLINGEN, actor=AF),
                    )
                )
            },
        ),
    ],
)
def test_references_inside_a_case_must_resolve(field: str, change: dict[str, Any]) -> None:
    refused(field, lambda: case(**change))


def test_a_notice_goes_to_forsakringskassan_only() -> None:
    error = refused("notices[0].recipient", lambda: case(notices=(notice(recipient=EMPLOYER),)))
    assert "Försäkringskassan" in error.message
    assert case(notices=(notice(),)).notices[0].recipient == FK


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("activities", {"activities": (activity("A1"), activity("A1", performed=at(6)))}),
        ("consents", {"consents": (consent("S1"), consent("S1", recorded_at=at(2)))}),
        ("notices", {"notices": (notice("N1"), notice("N1", sent=at(7)))}),
        (
            "staff",
            {
                "staff": (
                    StaffRole(REKO, RekoRole.REHABILITERINGSKOORDINATOR),
                    StaffRole(REKO, RekoRole.KURATOR),
                )
            },
        ),
        (
            "actors",
            {
                "actors": (
                    ExternalActor(FK, ActorType.FORSAKRINGSKASSAN, "Försäkringskassan"),
                    ExternalActor(FK, ActorType.FORSAKRINGSKASSAN, "FK Uppsala"),
                )
            },
        ),
    ],
)
def test_record_ids_are_unique_within_a_case(field: str, change: dict[str, Any]) -> None:
    error = refused(field, lambda: case(**change))
    assert "twice" in error.message


# --- canonical order ------------------------------------------------------------------------

OTHER_REKO = HsaId("SE2321000016-K002")


def parts() -> dict[str, Any]:
    """Every collection of a case, in one order; ``reordered`` gives them in another."""
    return {
        "staff": (
            StaffRole(REKO, RekoRole.REHABILITERINGSKOORDINATOR),
            StaffRole(DOCTOR, RekoRole.LAKARE),
            StaffRole(OTHER_REKO, RekoRole.REHABILITERINGSKOORDINATOR),
        ),
        "actors": (
            ExternalActor(FK, ActorType.FORSAKRINGSKASSAN, "Försäkringskassan"),
            ExternalActor(EMPLOYER, ActorType.ARBETSGIVARE, "Byggvaror AB"),
            ExternalActor(AF, ActorType.ARBETSFORMEDLINGEN, "Arbetsförmedlingen"),
        ),
        "sick_leave_periods": (
            SickLeavePeriod(date(2025, 1, 1), date(2025, 1, 31), 100),
            SickLeavePeriod(date(2025, 2, 1), None, 50),
        ),
        "consents": (
            consent("S1", actors=(FK, EMPLOYER, AF)),
            consent("S2", recorded_at=at(3), actors=(EMPLOYER, AF)),
            consent("S3", recorded_at=at(3), actors=(AF,)),
        ),
        "activities": (
            activity("A1"),
            activity("A2", performed=at(7), part=CoordinationPart.INTERN_SAMORDNING),
            activity(
                "A3",
                performed=at(7),
                part=CoordinationPart.EXTERN_SAMVERKAN,
                external_actors=(FK, EMPLOYER),
            ),
        ),
        "notices": (notice("N1"), notice("N2", sent=at(8)), notice("N3", sent=at(8))),
        "care_team": CareTeam(
            (
                TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, staff=REKO),
                TeamMember(RekoRole.LAKARE, staff=DOCTOR),
                TeamMember(ActorType.ARBETSGIVARE, actor=EMPLOYER),
            )
        ),
        "plan": plan(
            sick_leave_steps=(
                SickLeavePeriod(date(2025, 3, 1), date(2025, 3, 31), 75),
                SickLeavePeriod(date(2025, 4, 1), None, 50),
            ),
            follow_ups=(date(2025, 4, 1), date(2025, 5, 1)),
        ),
    }


def reordered(given: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if isinstance(value, tuple):
            out[key] = tuple(reversed(value))
    out["consents"] = tuple(replace(c, actors=tuple(reversed(c.actors))) for c in out["consents"])
    out["activities"] = tuple(
        replace(a, external_actors=tuple(reversed(a.external_actors))) for a in out["activities"]
    )
    out["care_team"] = CareTeam(tuple(reversed(given["care_team"].members)))
    old_plan = given["plan"]
    out["plan"] = replace(
        old_plan,
        sick_leave_steps=tuple(reversed(old_plan.sick_leave_steps)),
        follow_ups=tuple(reversed(old_plan.follow_ups)),
    )
    return out


def test_two_cases_from_the_same_parts_in_another_order_are_equal() -> None:
    one, other = case(**parts()), case(**reordered(parts()))
    assert one == other
    assert hash(one) == hash(other)
    for name in ("staff", "actors", "consents", "activities", "notices", "sick_leave_periods"):
        assert getattr(one, name) == getattr(other, name), name
    assert [s.hsa_id for s in one.staff] == [REKO, OTHER_REKO, DOCTOR]
    assert [a.source.record_id for a in one.activities] == ["A1", "A2", "A3"]
    assert [n.source.record_id for n in one.notices] == ["N1", "N2", "N3"]
    assert [c.source.record_id for c in one.consents] == ["S1", "S2", "S3"]


def test_canonical_order_makes_a_different_case_unequal() -> None:
    given = parts()
    given["activities"] = given["activities"][:2]
    assert case(**given) != case(**parts())


def test_duplicates_inside_a_record_collapse() -> None:
    assert consent(actors=(FK, FK, AF)).actors == consent(actors=(AF, FK)).actors
    assert len(consent(actors=(FK, FK, AF)).actors) == 2
    assert plan(follow_ups=(date(2025, 4, 1),) * 2).follow_ups == (date(2025, 4, 1),)
    member = TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, staff=REKO)
    assert CareTeam((member, member)).members == (member,)


def test_consent_history_is_kept_in_date_order() -> None:
    changed = change(date(2025, 3, 5), ConsentChangeKind.ACTORS_CHANGED)
    revoked = change(date(2025, 3, 10))
    assert consent(history=(revoked, changed)) == consent(history=(changed, revoked))


def test_same_day_consent_changes_in_another_order_are_equal() -> None:
    given = change(date(2025, 3, 1), ConsentChangeKind.GIVEN)
    changed = change(date(2025, 3, 1), ConsentChangeKind.ACTORS_CHANGED)
    assert consent(history=(given, changed)) == consent(history=(changed, given))
    assert case(consents=(consent(history=(given, changed)),)) == case(
        consents=(consent(history=(changed, given)),)
    )


def test_same_day_revocation_does_not_depend_on_input_order() -> None:
    revoke = change(date(2025, 3, 10))
    changed = change(date(2025, 3, 10), ConsentChangeKind.ACTORS_CHANGED)

    def outcome(history: tuple[ConsentChange, ...]) -> object:
        try:
            return consent(history=history)
        except DomainError as error:
            return error.field

    assert outcome((changed, revoke)) == outcome((revoke, changed))


# --- masking in a whole case ----------------------------------------------------------------


def test_a_case_never_shows_the_patient_number() -> None:
    built = case(
        patient=Patient(PatientId.parse("19780412-2385"), "Lindqvist", "Anna"),
        **parts(),
    )
    shown_forms = [
        repr(built),
        str(built),
        f"{built}",
        f"{built!r}",
        "%r" % (built,),  # noqa: UP031 - the form the logging module uses
        "%s" % (built,),  # noqa: UP031
        repr(built.patient),
        repr([built]),
    ]
    for shown in shown_forms:
        assert "197804122385" not in shown
        assert "2385" not in shown
    assert "19780412-****" in repr(built)
    assert "Lindqvist" in repr(built)
