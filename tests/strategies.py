"""Hypothesis strategies for the coordination domain: whole, valid ``CoordinationCase`` objects.

Cases are valid by the domain's invariants (references resolve, periods do not overlap, a closed
case has an end…) but not necessarily by the consent rules, so the mapping is exercised on
everything the domain can hold.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from reko_fhir.domain import (
    ActivityStatus,
    ActorType,
    CarePlanCategory,
    CareTeam,
    CareUnit,
    Consent,
    ConsentChange,
    ConsentChangeKind,
    ConsentForm,
    CoordinationActivity,
    CoordinationCase,
    CoordinationPart,
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
    luhn_check_digit,
)

FORSAKRINGSKASSAN = OrganisationNumber("2021005521")
ZONES = [timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), ZoneInfo("Europe/Stockholm")]

words = (
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzåäöÅÄÖABCXYZ0123456789 .,-%()é", min_size=1, max_size=30
    )
    .map(lambda s: " ".join(s.split()))
    .filter(bool)
)
record_ids = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-._:", min_size=1, max_size=12)
days = st.dates(min_value=date(2020, 2, 1), max_value=date(2030, 12, 31))
systems = st.sampled_from(
    ["https://journal.region-exempel.se/sid/rehab", "urn:oid:1.2.752.9999.1.7", "urn:uuid:x-1"]
)


@st.composite
def patient_ids(draw: st.DrawFn) -> PatientId:
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31)))
    day = born.day + (60 if draw(st.booleans()) else 0)  # samordningsnummer: day + 60
    body = f"{born.year:04d}{born.month:02d}{day:02d}{draw(st.integers(0, 999)):03d}"
    return PatientId(body + str(luhn_check_digit(body[2:])))


hsa_ids = st.builds(
    lambda digits, suffix: HsaId(f"SE{digits}-{suffix}"),
    st.sampled_from(["2321000016", "2321000131", "1623456789"]),
    st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcxyz0123456789", min_size=1, max_size=8),
)
org_numbers = st.integers(100_000_000, 999_999_999).map(
    lambda n: OrganisationNumber(f"{n}{luhn_check_digit(str(n))}")
)


@st.composite
def moments(draw: st.DrawFn, around: date | None = None) -> datetime:
    day = around or draw(days)
    clock = draw(st.integers(0, 24 * 3600 - 1))
    naive = datetime(day.year, day.month, day.day) + timedelta(seconds=clock)
    return naive.replace(tzinfo=draw(st.sampled_from(ZONES)))


@st.composite
def periods(draw: st.DrawFn, max_size: int = 3) -> tuple[SickLeavePeriod, ...]:
    """Non-overlapping sick-leave periods; only the last may be open-ended."""
    start = draw(days)
    out = []
    for index in range(draw(st.integers(0, max_size))):
        length = draw(st.integers(0, 120))
        last = index == max_size - 1
        end = None if last and draw(st.booleans()) else start + timedelta(days=length)
        out.append(SickLeavePeriod(start, end, draw(st.sampled_from([25, 50, 75, 100]))))
        if end is None:
            break
        start = end + timedelta(days=draw(st.integers(1, 30)))
    return tuple(out)


@st.composite
def consents(draw: st.DrawFn, system: str, rid: str, actors: list[OrganisationNumber]) -> Consent:
    valid_from = draw(days)
    history = []
    if draw(st.booleans()):
        history.append(ConsentChange(valid_from, ConsentChangeKind.GIVEN, draw(st.none() | words)))
    if draw(st.booleans()):
        changed = valid_from + timedelta(days=draw(st.integers(0, 60)))
        history.append(ConsentChange(changed, ConsentChangeKind.ACTORS_CHANGED))
    if draw(st.booleans()):
        revoked = valid_from + timedelta(days=draw(st.integers(61, 200)))
        history.append(ConsentChange(revoked, ConsentChangeKind.REVOKED, draw(st.none() | words)))
    chosen = draw(st.lists(st.sampled_from(actors), unique=True)) if actors else []
    return Consent(
        SourceRef(system, rid),
        draw(st.sampled_from(ConsentForm)),
        draw(moments(valid_from)),
        valid_from,
        tuple(chosen),
        tuple(history),
    )


@st.composite
def activities(
    draw: st.DrawFn, system: str, rid: str, staff: list[HsaId], actors: list[OrganisationNumber]
) -> CoordinationActivity:
    kva = draw(st.sampled_from(KvaCode))
    parts = [p for p in CoordinationPart if actors or p is not CoordinationPart.EXTERN_SAMVERKAN]
    part = draw(
        st.sampled_from(parts) if kva is KvaCode.GC001 else st.none() | st.sampled_from(parts)
    )
    chosen = draw(st.lists(st.sampled_from(actors), unique=True)) if actors else []
    if part is CoordinationPart.EXTERN_SAMVERKAN and not chosen:
        chosen = [actors[0]]
    return CoordinationActivity(
        SourceRef(system, rid),
        kva,
        draw(moments()),
        draw(st.sampled_from(staff)),
        part,
        tuple(chosen),
        draw(st.none() | words),
        draw(st.sampled_from(ActivityStatus)),
    )


@st.composite
def plans(
    draw: st.DrawFn, system: str, staff: list[HsaId], actors: list[OrganisationNumber]
) -> ReturnToWorkPlan:
    start = draw(days)
    planned = [
        PlannedActivity(
            draw(words),
            draw(st.sampled_from(CoordinationPart)),
            draw(st.none() | days),
            draw(st.none() | st.sampled_from(actors)) if actors else None,
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return ReturnToWorkPlan(
        SourceRef(system, draw(record_ids)),
        draw(st.sampled_from(staff)),
        draw(days),
        start,
        tuple(draw(st.lists(words, min_size=1, max_size=3))),
        draw(st.none() | st.just(start + timedelta(days=draw(st.integers(0, 365))))),
        draw(periods()),
        tuple(planned),
        tuple(draw(st.lists(days, max_size=3))),
        draw(st.sampled_from(CarePlanCategory)),
    )


@st.composite
def cases(draw: st.DrawFn) -> CoordinationCase:
    system = draw(systems)
    coordinator = StaffRole(
        draw(hsa_ids),
        RekoRole.REHABILITERINGSKOORDINATOR,
        draw(st.none() | words),
        draw(st.none() | words),
    )
    others = [
        StaffRole(
            h, draw(st.sampled_from(RekoRole)), draw(st.none() | words), draw(st.none() | words)
        )
        for h in draw(st.lists(hsa_ids, max_size=3, unique=True))
        if h != coordinator.hsa_id
    ]
    staff = [coordinator, *others]
    staff_ids = [s.hsa_id for s in staff]
    with_fk = draw(st.booleans())
    orgs = draw(
        st.lists(org_numbers, max_size=3, unique=True).filter(lambda o: FORSAKRINGSKASSAN not in o)
    )
    actors = [
        ExternalActor(
            o,
            draw(st.sampled_from([t for t in ActorType if t is not ActorType.FORSAKRINGSKASSAN])),
            draw(words),
        )
        for o in orgs
    ]
    if with_fk:
        actors.append(
            ExternalActor(FORSAKRINGSKASSAN, ActorType.FORSAKRINGSKASSAN, "Försäkringskassan")
        )
    actor_ids = [a.org_number for a in actors]
    ids = iter(draw(st.lists(record_ids, min_size=20, max_size=20, unique=True)))
    status = draw(st.sampled_from(RekoStatus))
    start = draw(days)
    end = start + timedelta(days=draw(st.integers(0, 400)))
    team = None
    if draw(st.booleans()):
        # Contract 2: a team may lack the coordinator (then only a warning).
        members = [
            TeamMember(s.role, staff=s.hsa_id)
            for s in staff
            if s is not coordinator or not others or draw(st.booleans())
        ]
        members += [
            TeamMember(a.actor_type, actor=a.org_number) for a in actors if draw(st.booleans())
        ]
        team = CareTeam(tuple(members))
    return CoordinationCase(
        source=SourceRef(system, next(ids)),
        patient=Patient(draw(patient_ids()), draw(st.none() | words), draw(st.none() | words)),
        care_unit=CareUnit(draw(hsa_ids), draw(words)),
        status=status,
        start=start,
        coordinator=coordinator.hsa_id,
        staff=tuple(staff),
        end=end if status.is_closed or draw(st.booleans()) else None,
        sick_leave_periods=draw(periods()),
        actors=tuple(actors),
        consents=tuple(
            draw(consents(system, next(ids), actor_ids)) for _ in range(draw(st.integers(0, 3)))
        ),
        care_team=team,
        plan=draw(st.none() | plans(system, staff_ids, actor_ids)),
        activities=tuple(
            draw(activities(system, next(ids), staff_ids, actor_ids))
            for _ in range(draw(st.integers(0, 6)))
        ),
        notices=tuple(
            NoticeToForsakringskassan(
                SourceRef(system, next(ids)),
                draw(moments()),
                draw(st.sampled_from(staff_ids)),
                FORSAKRINGSKASSAN,
                draw(st.none() | words),
            )
            for _ in range(draw(st.integers(0, 2)) if with_fk else 0)
        ),
    )


# A concrete case using every part of the domain, for example-based contract tests.
EXAMPLE_SYSTEM = "https://journal.region-exempel.se/sid/rehab"
CET, CEST = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))
EXAMPLE_UNIT = HsaId("SE2321000016-VC01")
EXAMPLE_COORDINATOR, EXAMPLE_DOCTOR = HsaId("SE2321000016-R001"), HsaId("SE2321000016-L002")
EXAMPLE_EMPLOYER = OrganisationNumber("5560360793")


def _src(record_id: str) -> SourceRef:
    return SourceRef(EXAMPLE_SYSTEM, record_id)


def example_case(**changes: object) -> CoordinationCase:
    """A closed case with staff, two actors, a revoked consent, team, plan, activities, notice."""
    fk, employer = FORSAKRINGSKASSAN, EXAMPLE_EMPLOYER
    reco, doctor = EXAMPLE_COORDINATOR, EXAMPLE_DOCTOR
    fields: dict[str, object] = {
        "source": _src("CASE-1"),
        "patient": Patient(PatientId("197803122386"), "Åström", "Märta"),
        "care_unit": CareUnit(EXAMPLE_UNIT, "Vårdcentralen Ekdalen"),
        "status": RekoStatus.AVSLUTAD,
        "start": date(2025, 3, 3),
        "end": date(2025, 9, 30),
        "coordinator": reco,
        "staff": (
            StaffRole(reco, RekoRole.REHABILITERINGSKOORDINATOR, "Karin Öberg", "Rehabkoordinator"),
            StaffRole(doctor, RekoRole.LAKARE),
        ),
        "sick_leave_periods": (
            SickLeavePeriod(date(2025, 2, 17), date(2025, 4, 13), 100),
            SickLeavePeriod(date(2025, 4, 14), None, 50),
        ),
        "actors": (
            ExternalActor(fk, ActorType.FORSAKRINGSKASSAN, "Försäkringskassan"),
            ExternalActor(employer, ActorType.ARBETSGIVARE, "Byggföretaget AB"),
        ),
        "consents": (
            Consent(
                _src("SAM-1"),
                ConsentForm.MUNTLIGT,
                datetime(2025, 3, 3, 10, 15, tzinfo=CET),
                date(2025, 3, 3),
            ),
            Consent(
                _src("SAM-2"),
                ConsentForm.SKRIFTLIGT,
                datetime(2025, 3, 10, 9, 0, tzinfo=CET),
                date(2025, 3, 10),
                (fk, employer),
                (
                    ConsentChange(date(2025, 3, 10), ConsentChangeKind.GIVEN),
                    ConsentChange(date(2025, 6, 2), ConsentChangeKind.REVOKED, "Återkallat"),
                ),
            ),
        ),
        "care_team": CareTeam(
            (
                TeamMember(RekoRole.REHABILITERINGSKOORDINATOR, staff=reco),
                TeamMember(RekoRole.LAKARE, staff=doctor),
                TeamMember(ActorType.ARBETSGIVARE, actor=employer),
            )
        ),
        "plan": ReturnToWorkPlan(
            _src("PLAN-1"),
            reco,
            date(2025, 3, 12),
            date(2025, 3, 12),
            ("Åter i arbete på heltid", "Anpassade arbetsuppgifter"),
            end=date(2025, 9, 30),
            sick_leave_steps=(SickLeavePeriod(date(2025, 4, 14), date(2025, 5, 11), 50),),
            activities=(
                PlannedActivity(
                    "Avstämningsmöte med arbetsgivaren",
                    CoordinationPart.EXTERN_SAMVERKAN,
                    date(2025, 4, 8),
                    employer,
                ),
            ),
            follow_ups=(date(2025, 5, 5),),
        ),
        "activities": (
            CoordinationActivity(
                _src("AKT-1"),
                KvaCode.GC001,
                datetime(2025, 3, 3, 10, 0, tzinfo=CET),
                reco,
                CoordinationPart.PERSONLIGT_STOD,
                note="Kartläggningssamtal",
            ),
            CoordinationActivity(
                _src("AKT-2"),
                KvaCode.GC001,
                datetime(2025, 4, 8, 9, 0, tzinfo=CEST),
                reco,
                CoordinationPart.EXTERN_SAMVERKAN,
                (fk, employer),
            ),
            CoordinationActivity(
                _src("AKT-3"), KvaCode.DV077, datetime(2025, 3, 12, 13, 30, tzinfo=CET), doctor
            ),
        ),
        "notices": (
            NoticeToForsakringskassan(
                _src("MED-1"),
                datetime(2025, 3, 11, 8, 5, 30, tzinfo=CET),
                reco,
                fk,
                "Patienten har behov av rehabilitering",
            ),
        ),
    }
    fields.update(changes)
    return CoordinationCase(**fields)  # type: ignore[arg-type]
