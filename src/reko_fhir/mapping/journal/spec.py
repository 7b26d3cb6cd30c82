"""Loading a declarative mapping file (YAML) into a checked :class:`MappingSpec`.

A mapping file describes one journal system's export format; see ``mappings/README.md``.
Everything wrong with the file itself is a :class:`MappingSpecError` naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from lxml import etree

from reko_fhir.domain import (
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
from reko_fhir.mapping.journal.issues import MappingSpecError
from reko_fhir.mapping.journal.schema import (
    CASE_FIELDS,
    RECORD_FIELDS,
    REQUIRED_KINDS,
    TABLES,
    FieldDef,
)
from reko_fhir.package_data import MAPPINGS_DIR

READERS = ("json", "xml", "csv")
_TABLE_CODES: dict[str, type[StrEnum]] = {
    "reko_status": RekoStatus,
    "role": RekoRole,
    "actor_type": ActorType,
    "consent_form": ConsentForm,
    "consent_change": ConsentChangeKind,
    "activity_status": ActivityStatus,
    "careplan_category": CarePlanCategory,
}
MAPPING_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one field is: one path, or several joined (date + time columns), or a constant."""

    paths: tuple[str, ...] = ()
    join: str = " "
    split: str | None = None
    value: str | None = None

    @property
    def source_name(self) -> str:
        """The field as a person finds it in the export (for issue messages)."""
        return " + ".join(self.paths) if self.paths else "(constant)"


@dataclass(frozen=True, slots=True)
class RecordSpec:
    select: str
    fields: dict[str, FieldSpec]


@dataclass(frozen=True, slots=True)
class ActivityCode:
    kva: str
    part: str | None


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """A checked mapping file."""

    name: str
    path: Path
    reader: str
    source_system: FieldSpec
    case: RecordSpec
    records: dict[str, RecordSpec]
    tables: dict[str, dict[str, str]]
    activity_codes: dict[str, ActivityCode]
    date_formats: tuple[str, ...]
    datetime_formats: tuple[str, ...]
    timezone: ZoneInfo
    options: dict[str, Any] = field(default_factory=dict)


def resolve_mapping_path(name_or_path: str, mappings_dir: Path | None = None) -> Path:
    """Accept a file path, or a mapping name looked up in ``mappings_dir`` (the shipped ones)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    base = mappings_dir or MAPPINGS_DIR
    for suffix in ("", *MAPPING_SUFFIXES):
        for path in (candidate.with_name(candidate.name + suffix), base / (name_or_path + suffix)):
            if path.is_file():
                return path
    known = ", ".join(p.stem for p in shipped_mappings(base)) if base.is_dir() else "none"
    raise MappingSpecError(
        f"no mapping file '{name_or_path}' (looked in {base}/; shipped mappings: {known})"
    )


def shipped_mappings(mappings_dir: Path | None = None) -> list[Path]:
    """The mapping files a name can pick, sorted by name."""
    base = mappings_dir or MAPPINGS_DIR
    return sorted(p for p in base.iterdir() if p.suffix in MAPPING_SUFFIXES and p.is_file())


def load_mapping(path: Path) -> MappingSpec:
    """Read and check a mapping file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MappingSpecError(f"{path}: cannot read the mapping file: {exc}") from None
    return _Checker(path).mapping(raw)


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> MappingSpecError:
        return MappingSpecError(f"{self.path}: '{key}': {message}")

    def mapping(self, raw: object) -> MappingSpec:
        top = self.table(raw, "(top)")
        reader = top.get("reader")
        if reader not in READERS:
            raise self.fail("reader", f"must be one of {', '.join(READERS)}")
        dates = self.table(top.get("dates", {}), "dates")
        try:
            timezone = ZoneInfo(str(dates.get("timezone", "Europe/Stockholm")))
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail("dates.timezone", "unknown time zone") from None
        records = self.table(top.get("records", {}), "records")
        for kind in records:
            if kind not in RECORD_FIELDS:
                raise self.fail(
                    f"records.{kind}", f"unknown record kind; known: {_names(RECORD_FIELDS)}"
                )
        for kind in REQUIRED_KINDS - set(records):
            raise self.fail(f"records.{kind}", "is required")
        tables = self.table(top.get("tables", {}), "tables")
        for name in tables:
            if name not in TABLES:
                raise self.fail(f"tables.{name}", f"unknown table; known: {_names(TABLES)}")
        plain = {
            name: self.code_table(name, t) for name, t in tables.items() if name != "activity_code"
        }
        spec = MappingSpec(
            name=str(top.get("name") or self.path.stem),
            path=self.path,
            reader=reader,
            source_system=self.field_spec(top.get("source_system"), "source_system"),
            case=self.record(top.get("case"), "case", CASE_FIELDS),
            records={
                k: self.record(v, f"records.{k}", RECORD_FIELDS[k]) for k, v in records.items()
            },
            tables=plain,
            activity_codes=self.activity_codes(tables.get("activity_code", {})),
            date_formats=self.formats(dates.get("date", "%Y-%m-%d"), "dates.date"),
            datetime_formats=self.formats(dates.get("datetime", "iso"), "dates.datetime"),
            timezone=timezone,
            options=self.table(top.get("options", {}), "options"),
        )
        self.check_tables_present(spec)
        self.check_paths(spec)
        return spec

    def table(self, raw: object, key: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(key, "must be a mapping of keys to values")
        return {str(k): v for k, v in raw.items()}

    def formats(self, raw: object, key: str) -> tuple[str, ...]:
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(i, str) and i for i in items):
            raise self.fail(key, "must be a format string or a list of them")
        return tuple(items)

    def field_spec(self, raw: object, key: str) -> FieldSpec:
        if isinstance(raw, str):
            return FieldSpec(paths=(raw,))
        spec = self.table(raw, key)
        unknown = set(spec) - {"path", "join", "split", "value"}
        if unknown:
            raise self.fail(key, f"unknown keys {sorted(unknown)}")
        if "value" in spec:
            return FieldSpec(value=str(spec["value"]))
        paths = spec.get("path")
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise self.fail(key, "needs 'path' (a string or a list of strings) or 'value'")
        split = spec.get("split")
        return FieldSpec(
            tuple(paths), str(spec.get("join", " ")), None if split is None else str(split)
        )

    def record(self, raw: object, key: str, defs: dict[str, FieldDef]) -> RecordSpec:
        spec = self.table(raw, key)
        fields = self.table(spec.get("fields"), f"{key}.fields")
        for name in fields:
            if name not in defs:
                raise self.fail(f"{key}.fields.{name}", f"unknown field; known: {_names(defs)}")
        for name, definition in defs.items():
            if definition.required and name not in fields:
                raise self.fail(f"{key}.fields.{name}", "is required")
        select = spec.get("select", "")
        if not isinstance(select, str):
            raise self.fail(f"{key}.select", "must be a string")
        parsed = {n: self.field_spec(f, f"{key}.fields.{n}") for n, f in fields.items()}
        return RecordSpec(select, parsed)

    def code_table(self, name: str, raw: object) -> dict[str, str]:
        allowed = {c.value for c in _TABLE_CODES[name]}
        table = {str(k): str(v) for k, v in self.table(raw, f"tables.{name}").items()}
        if name == "reko_status":  # a local code may translate to Rehabstöd's id (REKO_3)
            table = {k: _reko_code(v) for k, v in table.items()}
        for local, code in table.items():
            if code not in allowed:
                raise self.fail(
                    f"tables.{name}.{local}", f"'{code}' is not one of {sorted(allowed)}"
                )
        return table

    def check_paths(self, spec: MappingSpec) -> None:
        """Compile every selector and path now, so a typo fails at load, not mid-export."""
        namespaces = {str(k): str(v) for k, v in spec.options.get("namespaces", {}).items()}
        records = {"case": spec.case, **{f"records.{k}": v for k, v in spec.records.items()}}
        checks = [("source_system", p) for p in spec.source_system.paths]
        for key, record in records.items():
            if record.select and spec.reader != "csv":
                checks.append((f"{key}.select", record.select))
            for name, field_spec in record.fields.items():
                checks.extend((f"{key}.fields.{name}", p) for p in field_spec.paths)
        for key, expression in checks:
            try:
                _compile_path(spec.reader, expression, namespaces)
            except ValueError as exc:
                raise self.fail(key, f"'{expression}' is not a valid path: {exc}") from None

    def activity_codes(self, raw: object) -> dict[str, ActivityCode]:
        codes: dict[str, ActivityCode] = {}
        for local, target in self.table(raw, "tables.activity_code").items():
            entry = self.table(target, f"tables.activity_code.{local}")
            if "kva" not in entry:
                raise self.fail(f"tables.activity_code.{local}", "needs 'kva'")
            kva, part = str(entry["kva"]), entry.get("part")
            if kva not in {c.value for c in KvaCode}:
                raise self.fail(
                    f"tables.activity_code.{local}.kva", f"'{kva}' is not a KVÅ code here"
                )
            if part is not None and part not in {p.value for p in CoordinationPart}:
                raise self.fail(f"tables.activity_code.{local}.part", f"'{part}' is not a part")
            codes[local] = ActivityCode(kva, None if part is None else str(part))
        return codes

    def check_tables_present(self, spec: MappingSpec) -> None:
        kinds = {"case": spec.case, **spec.records}
        for kind, record in kinds.items():
            defs = CASE_FIELDS if kind == "case" else RECORD_FIELDS[kind]
            for name in record.fields:
                table = defs[name].table
                present = (
                    spec.activity_codes
                    if table == "activity_code"
                    else spec.tables.get(table or "")
                )
                if table and not present:
                    raise self.fail(f"tables.{table}", f"is needed by {kind}.fields.{name}")


def _compile_path(reader: str, expression: str, namespaces: dict[str, str]) -> None:
    """Raise ValueError when ``expression`` is not a valid path in the reader's language."""
    if reader == "json":
        try:
            jmespath.compile(expression)
        except JMESPathError as exc:
            raise ValueError(str(exc).replace("\n", " ")) from None
    elif reader == "xml":
        try:
            etree.XPath(expression, namespaces=namespaces)
        except etree.XPathSyntaxError as exc:
            raise ValueError(str(exc)) from None


def _names(known: dict[str, Any]) -> str:
    return ", ".join(sorted(known))


def _reko_code(code: str) -> str:
    """A reko-status code, also when written as Rehabstöd's id (``REKO_3`` → ``aktiv``)."""
    try:
        return RekoStatus.from_rehabstod_id(code).value
    except ValueError:
        return code
