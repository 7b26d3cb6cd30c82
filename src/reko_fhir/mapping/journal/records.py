"""Reading an export's records: fields converted and translated, problems as issues.

The half of the journal mapping engine that knows the export and the mapping file, not the
domain's case: :mod:`reko_fhir.mapping.journal.engine` builds cases from what this reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reko_fhir.domain import DomainError, ExternalActor, RekoStatus
from reko_fhir.mapping.journal import convert
from reko_fhir.mapping.journal.issues import MappingIssue, Severity
from reko_fhir.mapping.journal.readers import ExportReader, Node
from reko_fhir.mapping.journal.schema import RECORD_FIELDS, FieldDef, FieldType
from reko_fhir.mapping.journal.spec import FieldSpec, MappingSpec, RecordSpec

Values = dict[str, Any]

# Where a reference to an actor comes from, per referring record: its issue names that field.
_REF_FIELDS = {
    "the consent": ("consents", "actors"),
    "the activity": ("activities", "actors"),
    "the notice": ("notices", "recipient"),
    "the plan": ("plan_activities", "actor"),
}


class SkipRecordError(Exception):
    """A record could not be read; its issues are already recorded."""


class RecordReader:
    """Reads an export's records field by field; every problem becomes a MappingIssue on the
    source field, and an unreadable record is skipped (:class:`SkipRecordError`)."""

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
            raise SkipRecordError
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
            except SkipRecordError:
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
            raise SkipRecordError from None

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
            raise SkipRecordError
        return actors[key].org_number
