"""The journal mapping engine: a mapping file + an export → coordination cases, or issues.

It reads every record the mapping selects, converts and translates each field, and builds the
domain models. Every problem becomes a :class:`MappingIssue` naming file, record and field; the
engine goes on collecting, and a case with any error yields no output at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    DomainError,
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
from reko_fhir.mapping.journal import convert
from reko_fhir.mapping.journal.diagnosis import diagnosis_fields
from reko_fhir.mapping.journal.issues import MappingIssue, Severity
from reko_fhir.mapping.journal.readers import ExportReader, ExportSyntaxError, Node, open_export
from reko_fhir.mapping.journal.schema import CASE_FIELDS, RECORD_FIELDS, FieldDef, FieldType
from reko_fhir.mapping.journal.spec import ActivityCode, FieldSpec, MappingSpec, RecordSpec

Values = dict[str, Any]


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


class _SkipRecordError(Exception):
    """A record could not be read; its issues are already recorded."""


class _CaseBuilder:
    def __init__(self, spec: MappingSpec, reader: ExportReader, file_name: str, root: Node) -> None:
        self.spec = spec
        self.reader = reader
        self.file = file_name
        self.root = root
        self.issues: list[MappingIssue] = []
        self.labels: dict[tuple[str, str], tuple[Node, str | None]] = {}

    # -- issues ------------------------------------------------------------------------------
    def issue(
        self,
        node: Node,
        source_field: str | None,
        message: str,
        *,
        record_id: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.issues.append(
            MappingIssue(self.file, node.label, source_field, message, severity, record_id)
        )

    # -- fields ------------------------------------------------------------------------------
    def raw(self, node: Node, spec: FieldSpec) -> list[str]:
        if spec.value is not None:
            return [spec.value]
        if len(spec.paths) == 1:
            found = self.reader.values(node, spec.paths[0])
        else:
            parts = [self.reader.values(node, p) for p in spec.paths]
            found = [spec.join.join(p[0] for p in parts)] if all(parts) else []
        if spec.split is None:
            return found
        return [
            piece.strip() for text in found for piece in text.split(spec.split) if piece.strip()
        ]

    def read(self, node: Node, record: RecordSpec, defs: dict[str, FieldDef], kind: str) -> Values:
        """All fields of one record, converted; on a problem, records it and skips the record."""
        values: Values = {}
        failed = False
        record_id = None
        if "record_id" in record.fields:
            found = self.raw(node, record.fields["record_id"])
            record_id = found[0] if found else None
        for name, definition in defs.items():
            spec = record.fields.get(name)
            texts = self.raw(node, spec) if spec else []
            where = spec.source_name if spec else name
            if not texts:
                if definition.required:
                    self.issue(node, where, f"{kind} needs {name}, none found", record_id=record_id)
                    failed = True
                values[name] = [] if definition.many else None
                continue
            if not definition.many and len(set(texts)) > 1:
                shown = "several values" if definition.type is FieldType.PATIENT_ID else texts
                self.issue(node, where, f"conflicting values: {shown}", record_id=record_id)
                failed = True
                continue
            try:
                converted = [self.convert(t, definition) for t in texts]
            except convert.ConversionError as exc:
                self.issue(node, where, str(exc), record_id=record_id)
                failed = True
                continue
            values[name] = converted if definition.many else converted[0]
        if failed:
            raise _SkipRecordError
        return values

    def convert(self, text: str, definition: FieldDef) -> Any:
        kind = definition.type
        if kind is FieldType.DATE:
            return convert.to_date(text, self.spec.date_formats)
        if kind is FieldType.DATETIME:
            return convert.to_datetime(text, self.spec.datetime_formats, self.spec.timezone)
        if kind is FieldType.INT:
            return convert.to_int(text)
        if kind is FieldType.PATIENT_ID:
            return convert.to_patient_id(text)
        if kind is FieldType.HSA_ID:
            return convert.to_hsa_id(text)
        if kind is FieldType.ORG_NUMBER:
            return convert.to_org_number(text)
        if kind is FieldType.CODE:
            return self.translate(text, definition.table or "")
        return text

    def translate(self, text: str, table: str) -> Any:
        entries: dict[str, Any] = (
            self.spec.activity_codes if table == "activity_code" else self.spec.tables[table]
        )
        if text not in entries and table == "reko_status":
            # Rehabstöd's ids (REKO_1 … REKO_8) need no table: they come from the national side.
            try:
                return (text, RekoStatus.from_rehabstod_id(text).value)
            except ValueError:
                pass
        if text not in entries:
            raise convert.ConversionError(f"unknown local code '{text}' (table {table})")
        # The local wording travels with its translation: staff titles are kept verbatim.
        return (text, entries[text])

    def records(self, case: Node, kind: str) -> list[tuple[Node, Values]]:
        """Every readable record of ``kind``; unreadable ones are skipped with their issues."""
        record = self.spec.records.get(kind)
        if record is None:
            return []
        out = []
        for node in self.reader.select(case, record.select):
            try:
                out.append((node, self.read(node, record, RECORD_FIELDS[kind], kind)))
            except _SkipRecordError:
                continue
        return out

    @contextmanager
    def guard(self, node: Node, kind: str, rid: str | None = None) -> Iterator[None]:
        """Domain constructors inside become issues on the source field, then skip the record."""
        try:
            yield
        except DomainError as exc:
            record = self.spec.case if kind == "case" else self.spec.records.get(kind)
            name = exc.field.split(".")[0].split("[")[0]
            spec = record.fields.get(name) if record else None
            self.issue(node, spec.source_name if spec else None, exc.message, record_id=rid)
            raise _SkipRecordError from None

    def ref(
        self,
        node: Node,
        key: str,
        actors: dict[str, ExternalActor],
        kind: str,
        rid: str | None = None,
    ) -> Any:
        """The organisation number of actor ``key``, or an issue on the referring field."""
        if key not in actors:
            record, name = _REF_FIELDS[kind]
            spec = self.spec.records[record].fields[name]
            message = f"{kind} names actor '{key}', which the export does not describe"
            self.issue(node, spec.source_name, message, record_id=rid)
            raise _SkipRecordError
        return actors[key].org_number

    # -- the case ----------------------------------------------------------------------------
    def build(self, node: Node) -> CoordinationCase | None:
        try:
            head: Values | None = self.read(node, self.spec.case, CASE_FIELDS, "case")
        except _SkipRecordError:
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
        except _SkipRecordError:
            return None
        self.check_consent(case)
        return case

    def periods(self, case: Node, kind: str) -> tuple[SickLeavePeriod, ...]:
        out = []
        for node, v in self.records(case, kind):
            try:
                with self.guard(node, kind):
                    out.append(SickLeavePeriod(v["start"], v["end"], v["degree"]))
            except _SkipRecordError:
                continue
        return tuple(out)

    def staff(self, case: Node) -> dict[HsaId, StaffRole]:
        found: dict[HsaId, StaffRole] = {}
        for node, v in self.records(case, "staff"):
            title, role = v["title"]
            try:
                with self.guard(node, "staff"):
                    member = StaffRole(v["hsa_id"], RekoRole(role), v["name"], title)
            except _SkipRecordError:
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
            except _SkipRecordError:
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
            except _SkipRecordError:
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
            except _SkipRecordError:
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
        except _SkipRecordError:
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
            except _SkipRecordError:
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
        except _SkipRecordError:
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
            except _SkipRecordError:
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
            except _SkipRecordError:
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


_REF_FIELDS = {
    "the consent": ("consents", "actors"),
    "the activity": ("activities", "actors"),
    "the notice": ("notices", "recipient"),
    "the plan": ("plan_activities", "actor"),
}
_VIOLATION_FIELD = {
    ("activities", "external_actors"): "actors",
    ("activities", "performed"): "performed",
    ("notices", "recipient"): "recipient",
}
