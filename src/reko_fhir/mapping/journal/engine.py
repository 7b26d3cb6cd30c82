"""The journal mapping engine: a mapping file + an export → coordination cases, or issues.

It reads every record the mapping selects, converts and translates each field, and builds the
domain models. Every problem becomes a :class:`MappingIssue` naming file, record and field; the
engine goes on collecting, and a case with any error yields no output at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    Patient,
    PlannedActivity,
    RekoRole,
    RekoStatus,
    ReturnToWorkPlan,
    SickLeavePeriod,
    SourceRef,
    StaffRole,
    TeamMember,
    consent_violations,
)
from reko_fhir.mapping.journal.diagnosis import diagnosis_fields
from reko_fhir.mapping.journal.issues import MappingIssue, Severity
from reko_fhir.mapping.journal.readers import ExportSyntaxError, Node, open_export
from reko_fhir.mapping.journal.records import RecordReader, SkipRecordError, Values
from reko_fhir.mapping.journal.schema import CASE_FIELDS
from reko_fhir.mapping.journal.spec import ActivityCode, MappingSpec


@dataclass(slots=True)
class MappingResult:
    """What one export gave: the cases that mapped cleanly, and every issue found."""

    cases: list[CoordinationCase] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[MappingIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]


def map_export(spec: MappingSpec, data: bytes, file_name: str) -> MappingResult:
    """Map one export file. Never raises for problems of the export itself."""
    result = MappingResult()
    if not data.strip():
        result.issues.append(MappingIssue(file_name, "document", None, "the export is empty"))
        return result
    try:
        reader = open_export(spec, data)
        root = reader.root()
        cases = reader.select(root, spec.case.select)
    except ExportSyntaxError as exc:
        result.issues.append(MappingIssue(file_name, exc.where, None, exc.message))
        return result
    if not cases:
        result.issues.append(
            MappingIssue(file_name, root.label, spec.case.select, "the export holds no case")
        )
    for node in cases:
        builder = _CaseBuilder(spec, reader, file_name, root)
        try:
            case = builder.build(node)
        except ExportSyntaxError as exc:
            builder.issue(Node(exc.where, None), None, exc.message)
            case = None
        result.issues.extend(builder.issues)
        if case is not None and not any(i.severity is Severity.ERROR for i in builder.issues):
            result.cases.append(case)
    return result


def map_file(spec: MappingSpec, path: Path) -> MappingResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return MappingResult(
            issues=[MappingIssue(str(path), "file", None, exc.strerror or str(exc))]
        )
    return map_export(spec, data, path.name)


class _CaseBuilder(RecordReader):
    """Builds one coordination case from its records (:class:`RecordReader` reads them)."""

    # -- the case ----------------------------------------------------------------------------
    def build(self, node: Node) -> CoordinationCase | None:
        try:
            head: Values | None = self.read(node, self.spec.case, CASE_FIELDS, "case")
        except SkipRecordError:
            head = None
        spec = self.spec.source_system
        systems = self.raw(node, spec) or self.raw(self.root, spec)
        if not systems:
            self.issue(node, spec.source_name, "the export names no source system")
            return None
        system = systems[0]
        for label, name in diagnosis_fields(node):
            self.issue(
                Node(label, None),
                name,
                "a diagnosis field is not mapped: coordination is documented without diagnosis",
                severity=Severity.WARNING,
            )
        staff = self.staff(node)
        actors = self.actors(node)
        parts: Values = {
            "consents": self.consents(node, system, actors),
            "care_team": self.care_team(node, staff, actors),
            "plan": self.plan(node, system, actors),
            "activities": self.activities(node, system, actors),
            "notices": self.notices(node, system, actors),
            "sick_leave_periods": self.periods(node, "sick_leave"),
        }
        if head is None:
            return None
        try:
            with self.guard(node, "case", head["record_id"]):
                case = CoordinationCase(
                    source=SourceRef(system, head["record_id"]),
                    patient=Patient(head["personnummer"], head["family"], head["given"]),
                    care_unit=CareUnit(head["unit_hsa_id"], head["unit_name"]),
                    status=RekoStatus(head["status"][1]),
                    start=head["start"],
                    end=head["end"],
                    coordinator=head["coordinator"],
                    staff=tuple(staff.values()),
                    actors=tuple(actors.values()),
                    **parts,
                )
        except SkipRecordError:
            return None
        self.check_consent(case)
        return case

    def periods(self, case: Node, kind: str) -> tuple[SickLeavePeriod, ...]:
        out = []
        for node, v in self.records(case, kind):
            try:
                with self.guard(node, kind):
                    out.append(SickLeavePeriod(v["start"], v["end"], v["degree"]))
            except SkipRecordError:
                continue
        return tuple(out)

    def staff(self, case: Node) -> dict[HsaId, StaffRole]:
        found: dict[HsaId, StaffRole] = {}
        for node, v in self.records(case, "staff"):
            title, role = v["title"]
            try:
                with self.guard(node, "staff"):
                    member = StaffRole(v["hsa_id"], RekoRole(role), v["name"], title)
            except SkipRecordError:
                continue
            if found.setdefault(member.hsa_id, member) != member:
                self.issue(node, None, f"staff {member.hsa_id} is described twice, differently")
        return found

    def actors(self, case: Node) -> dict[str, ExternalActor]:
        found: dict[str, ExternalActor] = {}
        for node, v in self.records(case, "actors"):
            try:
                with self.guard(node, "actors"):
                    actor = ExternalActor(v["org_number"], ActorType(v["type"][1]), v["name"])
            except SkipRecordError:
                continue
            if found.setdefault(v["key"], actor) != actor:
                self.issue(node, None, f"actor '{v['key']}' is described twice, differently")
        return found

    def consents(
        self, case: Node, system: str, actors: dict[str, ExternalActor]
    ) -> tuple[Consent, ...]:
        changes: dict[str, list[tuple[Node, ConsentChange]]] = {}
        for node, v in self.records(case, "consent_changes"):
            try:
                with self.guard(node, "consent_changes"):
                    change = ConsentChange(v["on"], ConsentChangeKind(v["kind"][1]), v["note"])
            except SkipRecordError:
                continue
            changes.setdefault(v["consent"], []).append((node, change))
        out = []
        for node, v in self.records(case, "consents"):
            rid = v["record_id"]
            history = [change for _, change in changes.pop(rid, [])]
            # Giving the consent is itself a change; exports that list only later events imply it.
            if not any(c.kind is ConsentChangeKind.GIVEN for c in history):
                history.append(ConsentChange(v["valid_from"], ConsentChangeKind.GIVEN))
            try:
                orgs = tuple(self.ref(node, k, actors, "the consent", rid) for k in v["actors"])
                with self.guard(node, "consents", rid):
                    form = ConsentForm(v["form"][1])
                    consent = Consent(
                        SourceRef(system, rid),
                        form,
                        v["recorded_at"],
                        v["valid_from"],
                        orgs,
                        tuple(history),
                    )
            except SkipRecordError:
                continue
            out.append(consent)
        for rid, orphans in changes.items():
            self.issue(orphans[0][0], None, f"the change refers to consent '{rid}', not exported")
        return tuple(out)

    def care_team(
        self, case: Node, staff: dict[HsaId, StaffRole], actors: dict[str, ExternalActor]
    ) -> CareTeam | None:
        rows = self.records(case, "team")
        if not rows:
            return None
        by_hsa = {s.hsa_id.value: s for s in staff.values()}
        members = []
        for node, v in rows:
            key = v["member"]
            if key in by_hsa:
                members.append(TeamMember(by_hsa[key].role, staff=by_hsa[key].hsa_id))
            elif key in actors:
                members.append(TeamMember(actors[key].actor_type, actor=actors[key].org_number))
            else:
                self.issue(node, None, f"team member '{key}' is neither staff nor an actor")
        try:
            with self.guard(rows[0][0], "team"):
                team = CareTeam(tuple(members))
        except SkipRecordError:
            return None
        if not team.has_coordinator:  # contract 2: allowed, but worth a look
            self.issue(
                rows[0][0],
                None,
                "the care team has no rehabiliteringskoordinator (allowed; who coordinates?)",
                severity=Severity.WARNING,
            )
        return team

    def plan(
        self, case: Node, system: str, actors: dict[str, ExternalActor]
    ) -> ReturnToWorkPlan | None:
        heads = self.records(case, "plan")
        if len(heads) > 1:
            self.issue(heads[1][0], None, "a case has one return-to-work plan; this is a second")
        if not heads:
            return None
        node, v = heads[0]
        planned = []
        for pnode, p in self.records(case, "plan_activities"):
            local, code = p["code"]
            if code.part is None:
                self.issue(pnode, None, f"local code '{local}' has no coordination part")
                continue
            try:
                actor = (
                    None if p["actor"] is None else self.ref(pnode, p["actor"], actors, "the plan")
                )
                with self.guard(pnode, "plan_activities"):
                    planned.append(
                        PlannedActivity(
                            p["description"], CoordinationPart(code.part), p["planned_on"], actor
                        )
                    )
            except SkipRecordError:
                continue
        try:
            with self.guard(node, "plan", v["record_id"]):
                return ReturnToWorkPlan(
                    SourceRef(system, v["record_id"]),
                    v["author"],
                    v["created"],
                    v["start"],
                    tuple(g["text"] for _, g in self.records(case, "plan_goals")),
                    v["end"],
                    self.periods(case, "plan_steps"),
                    tuple(planned),
                    tuple(f["on"] for _, f in self.records(case, "follow_ups")),
                    (
                        CarePlanCategory(v["category"][1])
                        if v["category"]
                        else CarePlanCategory.ATERGANG_I_ARBETE
                    ),
                )
        except SkipRecordError:
            return None

    def activities(
        self, case: Node, system: str, actors: dict[str, ExternalActor]
    ) -> tuple[CoordinationActivity, ...]:
        out = []
        for node, v in self.records(case, "activities"):
            rid = v["record_id"]
            code: ActivityCode = v["code"][1]
            status = ActivityStatus(v["status"][1]) if v["status"] else ActivityStatus.COMPLETED
            try:
                orgs = tuple(self.ref(node, k, actors, "the activity", rid) for k in v["actors"])
                with self.guard(node, "activities", rid):
                    part = CoordinationPart(code.part) if code.part else None
                    activity = CoordinationActivity(
                        SourceRef(system, rid),
                        KvaCode(code.kva),
                        v["performed"],
                        v["performer"],
                        part,
                        orgs,
                        v["note"],
                        status,
                    )
            except SkipRecordError:
                continue
            out.append(activity)
            self.labels[("activities", rid)] = (node, rid)
        return tuple(out)

    def notices(
        self, case: Node, system: str, actors: dict[str, ExternalActor]
    ) -> tuple[NoticeToForsakringskassan, ...]:
        out = []
        for node, v in self.records(case, "notices"):
            rid = v["record_id"]
            try:
                org = self.ref(node, v["recipient"], actors, "the notice", rid)
                with self.guard(node, "notices", rid):
                    notice = NoticeToForsakringskassan(
                        SourceRef(system, rid), v["sent"], v["sender"], org, v["text"]
                    )
            except SkipRecordError:
                continue
            out.append(notice)
            self.labels[("notices", rid)] = (node, rid)
        return tuple(out)

    def check_consent(self, case: CoordinationCase) -> None:
        """The domain's consent rules, each reported on the record that breaks it."""
        for violation in consent_violations(case):
            collection, _, rest = violation.field.partition("[")
            index = int(rest.split("]")[0])
            record = (case.activities if collection == "activities" else case.notices)[index]
            node, rid = self.labels[(collection, record.source.record_id)]
            name = _VIOLATION_FIELD.get((collection, violation.field.rpartition(".")[2]))
            spec = self.spec.records[collection].fields.get(name or "")
            self.issue(
                node,
                spec.source_name if spec else None,
                violation.message,
                record_id=rid,
                severity=Severity(violation.severity),
            )


_VIOLATION_FIELD = {
    ("activities", "external_actors"): "actors",
    ("activities", "performed"): "performed",
    ("notices", "recipient"): "recipient",
}
