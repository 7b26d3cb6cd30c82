"""Plain typed models of a coordination case (koordineringsinsatser), with their invariants.

Every model is a frozen dataclass; constructors check what must always hold and raise
:class:`~reko_fhir.domain.errors.DomainError` naming the field. Collections are tuples kept in a
canonical order, so two descriptions of the same case compare equal whatever order they came in.
References between parts of a case are by business identifier (HSA-id, organisation number),
resolved by :class:`CoordinationCase`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from reko_fhir.domain.codes import (
    SICK_LEAVE_DEGREES,
    ActivityStatus,
    ActorType,
    CarePlanCategory,
    ConsentChangeKind,
    ConsentForm,
    CoordinationPart,
    KvaCode,
    RekoRole,
    RekoStatus,
)
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId, OrganisationNumber, PatientId

_SOURCE_SYSTEM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _fixed_offset(value: datetime, name: str) -> datetime:
    """``value`` with its UTC offset pinned, or DomainError when it has none.

    A zone such as Europe/Stockholm makes 02:30 on the night clocks go back ambiguous, and
    Python then treats it as unequal to the same instant in any other zone (PEP 495); with the
    offset fixed, one instant is one value however it was written.
    """
    offset = value.utcoffset() if value.tzinfo is not None else None
    if offset is None:
        raise DomainError(name, "a point in time needs its UTC offset")
    return value.replace(tzinfo=timezone(offset), fold=0)


def _require_text(value: str | None, name: str, *, optional: bool = True) -> None:
    if value is None:
        if not optional:
            raise DomainError(name, "is required")
        return
    if not value.strip():
        raise DomainError(name, "must not be blank")


@dataclass(frozen=True, slots=True, order=True)
class SourceRef:
    """Where a record comes from: the journal system (a URI) and the record's own id there.

    Deterministic FHIR ids and business identifiers are derived from it, so that the same
    record sent twice, or exported by two tools, lands once.
    """

    system: str
    record_id: str

    def __post_init__(self) -> None:
        if not _SOURCE_SYSTEM.match(self.system):
            raise DomainError("system", "the source system must be a URI (urn:…, https://…)")
        if not _RECORD_ID.match(self.record_id):
            raise DomainError("record_id", "a record id is 1-64 letters, digits or . _ : -")


@dataclass(frozen=True, slots=True)
class Patient:
    """The sick-listed patient, identified by personnummer or samordningsnummer."""

    id: PatientId
    family: str | None = None
    given: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.family, "family")
        _require_text(self.given, "given")


@dataclass(frozen=True, slots=True)
class CareUnit:
    """The care unit (vårdenhet) responsible for the coordination, by HSA-id."""

    hsa_id: HsaId
    name: str

    def __post_init__(self) -> None:
        _require_text(self.name, "name", optional=False)


@dataclass(frozen=True, slots=True)
class ExternalActor:
    """An actor outside health care: Försäkringskassan, Arbetsförmedlingen, an employer…"""

    org_number: OrganisationNumber
    actor_type: ActorType
    name: str

    def __post_init__(self) -> None:
        _require_text(self.name, "name", optional=False)


@dataclass(frozen=True, slots=True)
class StaffRole:
    """A member of staff in a coordination role; ``title`` keeps the journal's own wording."""

    hsa_id: HsaId
    role: RekoRole
    name: str | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, RekoRole):
            raise DomainError("role", "staff take a role from reko-role")
        _require_text(self.name, "name")
        _require_text(self.title, "title")


@dataclass(frozen=True, slots=True)
class SickLeavePeriod:
    """A stretch of sick leave at one degree (25, 50, 75 or 100 %); ``end`` open while ongoing."""

    start: date
    end: date | None
    degree: int

    def __post_init__(self) -> None:
        if self.degree not in SICK_LEAVE_DEGREES:
            raise DomainError(
                "degree", f"a sick-leave degree is 25, 50, 75 or 100, not {self.degree}"
            )
        if self.end is not None and self.end < self.start:
            raise DomainError("end", "a sick-leave period cannot end before it starts")


def _check_periods(periods: tuple[SickLeavePeriod, ...], name: str) -> tuple[SickLeavePeriod, ...]:
    ordered = tuple(sorted(periods, key=lambda p: p.start))
    for earlier, later in itertools.pairwise(ordered):
        if earlier.end is None or earlier.end >= later.start:
            raise DomainError(name, f"sick-leave periods overlap at {later.start.isoformat()}")
    return ordered


@dataclass(frozen=True, slots=True, order=True)
class ConsentChange:
    """One entry of a consent's history: given, actors changed, or revoked."""

    on: date
    kind: ConsentChangeKind
    note: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.note, "note")


_KIND_ORDER = {
    ConsentChangeKind.GIVEN: 0,
    ConsentChangeKind.ACTORS_CHANGED: 1,
    ConsentChangeKind.REVOKED: 2,
}


def _change_order(change: ConsentChange) -> tuple[date, int, str]:
    return change.on, _KIND_ORDER[change.kind], change.note or ""


@dataclass(frozen=True, slots=True)
class Consent:
    """The patient's consent to coordination and to informing the actors it names.

    Oral consent is enough; the journal keeps consents and their revocations (HSLF-FS 2016:40),
    so the history is part of the consent. A revoked consent covers nothing after its revocation.
    """

    source: SourceRef
    form: ConsentForm
    recorded_at: datetime
    valid_from: date
    actors: tuple[OrganisationNumber, ...] = ()
    history: tuple[ConsentChange, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "recorded_at", _fixed_offset(self.recorded_at, "recorded_at"))
        object.__setattr__(self, "actors", tuple(sorted(set(self.actors), key=str)))
        # A total order: on one day a consent is given, then changed, then revoked.
        history = tuple(sorted(self.history, key=_change_order))
        object.__setattr__(self, "history", history)
        for change in history:
            if change.on < self.valid_from:
                raise DomainError("history", "a change cannot predate the consent it changes")
        revocations = [c for c in history if c.kind is ConsentChangeKind.REVOKED]
        if len(revocations) > 1:
            raise DomainError("history", "a consent is revoked at most once")
        if revocations and history[-1].kind is not ConsentChangeKind.REVOKED:
            raise DomainError("history", "nothing can change a consent after its revocation")
        if sum(c.kind is ConsentChangeKind.GIVEN for c in history) > 1:
            raise DomainError("history", "a consent is given once; a new one is a new consent")

    @property
    def revoked_on(self) -> date | None:
        last = self.history[-1] if self.history else None
        return last.on if last and last.kind is ConsentChangeKind.REVOKED else None

    def is_in_force_on(self, day: date) -> bool:
        """Given on or before ``day`` and not revoked before it."""
        revoked = self.revoked_on
        return self.valid_from <= day and (revoked is None or day <= revoked)


@dataclass(frozen=True, slots=True)
class CoordinationActivity:
    """One journaled coordination occasion (KVÅ GC001), or the plan (DV077) / follow-up (AW026)."""

    source: SourceRef
    kva: KvaCode
    performed: datetime
    performer: HsaId
    part: CoordinationPart | None = None
    external_actors: tuple[OrganisationNumber, ...] = ()
    note: str | None = None
    status: ActivityStatus = ActivityStatus.COMPLETED

    def __post_init__(self) -> None:
        object.__setattr__(self, "performed", _fixed_offset(self.performed, "performed"))
        _require_text(self.note, "note")
        object.__setattr__(
            self, "external_actors", tuple(sorted(set(self.external_actors), key=str))
        )
        if self.kva is KvaCode.GC001 and self.part is None:
            raise DomainError("part", "a GC001 activity belongs to one of the three parts")
        if self.part is CoordinationPart.EXTERN_SAMVERKAN and not self.external_actors:
            raise DomainError("external_actors", "collaboration (extern-samverkan) names an actor")


@dataclass(frozen=True, slots=True)
class PlannedActivity:
    """An activity the return-to-work plan foresees, optionally with an external actor."""

    description: str
    part: CoordinationPart
    planned_on: date | None = None
    actor: OrganisationNumber | None = None

    def __post_init__(self) -> None:
        _require_text(self.description, "description", optional=False)


@dataclass(frozen=True, slots=True)
class ReturnToWorkPlan:
    """The rehabilitation plan: for return to work (with the sick leave, journaled with DV077)
    or for entering working life (``category``)."""

    source: SourceRef
    author: HsaId
    created: date
    start: date
    goals: tuple[str, ...]
    end: date | None = None
    sick_leave_steps: tuple[SickLeavePeriod, ...] = ()
    activities: tuple[PlannedActivity, ...] = ()
    follow_ups: tuple[date, ...] = ()
    category: CarePlanCategory = CarePlanCategory.ATERGANG_I_ARBETE

    def __post_init__(self) -> None:
        if not self.goals:
            raise DomainError("goals", "a return-to-work plan states at least one goal")
        for index, goal in enumerate(self.goals):
            _require_text(goal, f"goals[{index}]", optional=False)
        if self.end is not None and self.end < self.start:
            raise DomainError("end", "a plan cannot end before it starts")
        steps = _check_periods(self.sick_leave_steps, "sick_leave_steps")
        object.__setattr__(self, "sick_leave_steps", steps)
        object.__setattr__(self, "follow_ups", tuple(sorted(set(self.follow_ups))))


@dataclass(frozen=True, slots=True)
class TeamMember:
    """A care-team participant: staff (with a ``RekoRole``) or an external actor (``ActorType``)."""

    role: RekoRole | ActorType
    staff: HsaId | None = None
    actor: OrganisationNumber | None = None

    def __post_init__(self) -> None:
        if (self.staff is None) == (self.actor is None):
            raise DomainError("member", "a team member is either staff or an external actor")
        if self.staff is not None and not isinstance(self.role, RekoRole):
            raise DomainError("role", "staff take a role from reko-role")
        if self.actor is not None and not isinstance(self.role, ActorType):
            raise DomainError("role", "external actors take a role from reko-actor-type")


@dataclass(frozen=True, slots=True)
class CareTeam:
    """The care team around the patient, usually with a rehabilitation coordinator.

    Contract 2: doctors, nurses and others may perform the coordination, so a team without a
    ``rehabiliteringskoordinator`` is allowed; the mapping and the profile (``reko-ct-1``) warn.
    """

    members: tuple[TeamMember, ...]

    @property
    def has_coordinator(self) -> bool:
        return any(m.role is RekoRole.REHABILITERINGSKOORDINATOR for m in self.members)

    def __post_init__(self) -> None:
        key = lambda m: (str(m.staff or m.actor), str(m.role))  # noqa: E731
        object.__setattr__(self, "members", tuple(sorted(set(self.members), key=key)))


@dataclass(frozen=True, slots=True)
class NoticeToForsakringskassan:
    """Informing Försäkringskassan of the patient's need of rehabilitation (needs consent)."""

    source: SourceRef
    sent: datetime
    sender: HsaId
    recipient: OrganisationNumber
    text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sent", _fixed_offset(self.sent, "sent"))
        _require_text(self.text, "text")


@dataclass(frozen=True, slots=True)
class CoordinationCase:
    """A patient's coordination case at one care unit: everything the journal holds about it.

    ``staff`` and ``actors`` list everyone the case refers to; every HSA-id and organisation
    number used elsewhere in the case must resolve to one of them.
    """

    source: SourceRef
    patient: Patient
    care_unit: CareUnit
    status: RekoStatus
    start: date
    coordinator: HsaId
    staff: tuple[StaffRole, ...]
    end: date | None = None
    sick_leave_periods: tuple[SickLeavePeriod, ...] = ()
    actors: tuple[ExternalActor, ...] = ()
    consents: tuple[Consent, ...] = ()
    care_team: CareTeam | None = None
    plan: ReturnToWorkPlan | None = None
    activities: tuple[CoordinationActivity, ...] = ()
    notices: tuple[NoticeToForsakringskassan, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise DomainError("end", "a case cannot end before it starts")
        if self.status.is_closed and self.end is None:
            raise DomainError("end", f"a case with status {self.status} has an end date")
        periods = _check_periods(self.sick_leave_periods, "sick_leave_periods")
        object.__setattr__(self, "sick_leave_periods", periods)
        self._canonicalise()
        self._check_references()

    def _canonicalise(self) -> None:
        # Canonical order makes two descriptions of one case equal, whatever order they came in.
        put = object.__setattr__
        put(self, "staff", tuple(sorted(self.staff, key=lambda s: s.hsa_id.value)))
        put(self, "actors", tuple(sorted(self.actors, key=lambda a: a.org_number.value)))
        put(self, "consents", tuple(sorted(self.consents, key=lambda c: (c.recorded_at, c.source))))
        by_time = sorted(self.activities, key=lambda a: (a.performed, a.source))
        put(self, "activities", tuple(by_time))
        put(self, "notices", tuple(sorted(self.notices, key=lambda n: (n.sent, n.source))))

    def _check_references(self) -> None:
        _unique([s.hsa_id.value for s in self.staff], "staff")
        _unique([a.org_number.value for a in self.actors], "actors")
        for name, records in (
            ("consents", self.consents),
            ("activities", self.activities),
            ("notices", self.notices),
        ):
            _unique([r.source.record_id for r in records], name)
        staff = {s.hsa_id for s in self.staff}
        actors = {a.org_number: a for a in self.actors}

        def need_staff(hsa_id: HsaId, where: str) -> None:
            if hsa_id not in staff:
                raise DomainError(where, f"staff {hsa_id} is not among the case's staff")

        def need_actor(org: OrganisationNumber, where: str) -> ExternalActor:
            if org not in actors:
                raise DomainError(where, f"actor {org} is not among the case's external actors")
            return actors[org]

        need_staff(self.coordinator, "coordinator")
        for i, consent in enumerate(self.consents):
            for org in consent.actors:
                need_actor(org, f"consents[{i}].actors")
        for i, activity in enumerate(self.activities):
            need_staff(activity.performer, f"activities[{i}].performer")
            for org in activity.external_actors:
                need_actor(org, f"activities[{i}].external_actors")
        for i, notice in enumerate(self.notices):
            need_staff(notice.sender, f"notices[{i}].sender")
            if need_actor(notice.recipient, f"notices[{i}].recipient").actor_type is not (
                ActorType.FORSAKRINGSKASSAN
            ):
                raise DomainError(f"notices[{i}].recipient", "a notice goes to Försäkringskassan")
        if self.plan is not None:
            need_staff(self.plan.author, "plan.author")
            for i, planned in enumerate(self.plan.activities):
                if planned.actor is not None:
                    need_actor(planned.actor, f"plan.activities[{i}].actor")
        if self.care_team is not None:
            for i, member in enumerate(self.care_team.members):
                if member.staff is not None:
                    need_staff(member.staff, f"care_team.members[{i}].staff")
                if member.actor is not None:
                    need_actor(member.actor, f"care_team.members[{i}].actor")

    def staff_member(self, hsa_id: HsaId) -> StaffRole:
        return next(s for s in self.staff if s.hsa_id == hsa_id)

    def actor(self, org_number: OrganisationNumber) -> ExternalActor:
        return next(a for a in self.actors if a.org_number == org_number)


def _unique(keys: list[str], name: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise DomainError(name, f"{key} occurs twice")
        seen.add(key)
