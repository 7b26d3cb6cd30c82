"""Issue 14, acceptance 1: a generated feed of 585 sick leaves over 3 care units, imported by the
real ``reko-fhir sick-leaves import`` into a real ``reko-fhir serve`` (SQLite, PostgreSQL).

The known answer comes from the generator's intent labels (tests/peers/sick_leave_feed.py). The
worklist each unit reads with ``GET /Task`` equals it exactly; a second import writes nothing
(the same versionIds, no new Provenance, no new rows); a case started through the API accepts
its Task; the diagnoses the stub sends are in no output, log line or stored row.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.domain import KvaCode
from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from tests.isolation.conftest import BACKENDS, Server, start
from tests.peers.rivta_stub import DIAGNOSES, RivtaStub
from tests.peers.sick_leave_feed import (
    UNITS,
    PlannedSickLeave,
    feed_xml,
    generate,
    known_worklist,
    labelled,
)
from tests.sick_leaves.conftest import assert_no_diagnosis, national_file, run_cli

Json = dict[str, Any]
STAFF = "SE2321000016-K001"
SEED = 14


class Unit:
    """One care unit's coordinator on the running server."""

    def __init__(self, server: Server, unit: str) -> None:
        self.server, self.unit = server, unit
        token = server.service.token("user/*.cruds", unit=unit, subject=STAFF)
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/fhir+json"}

    def send(self, method: str, url: str, body: Json | None = None, **params: str) -> Json:
        answer = self.server.http.request(
            method, url, json=body, params=params or None, headers=self.headers
        )
        assert answer.status_code in (200, 201), answer.text
        result: Json = answer.json()
        return result

    def search(self, kind: str, **params: str) -> list[Json]:
        bundle = self.send("GET", f"/{kind}", _count="1000", **params)
        assert len(bundle.get("entry", [])) < 1000
        return [e["resource"] for e in bundle.get("entry", [])]

    def organization(self) -> str:
        """The unit's Organization (created by the first caller, the import finds it)."""
        found = self.search("Organization", identifier=f"{c.HSA}|{self.unit}")
        if found:
            return f"Organization/{found[0]['id']}"
        body = {
            "resourceType": "Organization",
            "meta": c.profile("Organization"),
            "identifier": [c.identifier(c.HSA, self.unit)],
            "active": True,
        }
        return f"Organization/{self.send('POST', '/Organization', body)['id']}"

    def patient(self, personnummer: str) -> str:
        body = {
            "resourceType": "Patient",
            "meta": c.profile("Patient"),
            "identifier": [c.identifier(c.PATIENT_ID_SYSTEMS["personnummer"], personnummer)],
            "name": [{"family": "Tolvansson", "given": ["Tolvan"]}],
        }
        return f"Patient/{self.send('POST', '/Patient', body)['id']}"

    def start_case(self, patient: str, owner: str, number: int) -> Json:
        """A coordination case (RekoEpisodeOfCare, active) for the patient at the unit."""
        body = {
            "resourceType": "EpisodeOfCare",
            "meta": c.profile("EpisodeOfCare"),
            "extension": [{"url": c.EXT_STATUS, "valueCoding": c.coding(c.CS_STATUS, "aktiv")}],
            "identifier": [c.identifier("urn:example:case", f"{self.unit}-{number}")],
            "status": "active",
            "type": [c.kva(KvaCode.GC001)],
            "patient": {"reference": patient},
            "managingOrganization": {"reference": owner},
            "period": {"start": date.today().isoformat()},
            "careManager": {"type": "Practitioner", "identifier": c.identifier(c.HSA, STAFF)},
        }
        return self.send("POST", "/EpisodeOfCare", body)

    def tasks(self, owner: str, **params: str) -> list[Json]:
        return self.search("Task", owner=owner, code=wl.TASK_TOKEN, **params)

    def personnummer(self) -> dict[str, str]:
        """``Patient/id`` -> personnummer of the unit's Patients."""
        return {f"Patient/{p['id']}": p["identifier"][0]["value"] for p in self.search("Patient")}

    def provenances(self) -> int:
        total: int = self.send("GET", "/Provenance", _summary="count")["total"]
        return total


def worklist_of(unit: Unit, owner: str) -> set[tuple[str, str, int, int]]:
    """What the unit's coordinator sees to assess: (personnummer, start, days, degree)."""
    names = unit.personnummer()
    return {
        (
            names[task["for"]["reference"]],
            wl.task_input(task, wl.START),
            wl.task_input(task, wl.DAYS),
            wl.task_input(task, wl.DEGREE),
        )
        for task in unit.tasks(owner, status="requested")
    }


def import_all(env: dict[str, str], outputs: list[str]) -> list[dict[str, int]]:
    import json  # noqa: PLC0415

    summaries = []
    for unit in UNITS:
        done = run_cli("sick-leaves", "import", "--unit", unit, "--format", "json", env=env)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stderr[-3000:]
        summaries.append(json.loads(done.stdout))
    return summaries


def stored_text(server: Server) -> str:
    """Every stored row of the server's database, as text."""
    if server.database_url is None:
        with sqlite3.connect(server.service.data_dir / "reko.sqlite3") as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return "\n".join(
                repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
            )
    import psycopg  # noqa: PLC0415

    url = server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as db:
        schema = db.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema[0],),
        ).fetchall()
        return "\n".join(
            repr(row)
            for (table,) in tables
            for row in db.execute(f'SELECT t::text FROM "{table}" t')
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_generated_feed_gives_the_known_worklist(
    backend: str, tmp_path: Path, stub: RivtaStub
) -> None:
    today = date.today()
    plan = generate(SEED, today)
    assert len(plan) >= 500
    assert {p.label for p in plan} == {
        "in-window", "out-of-window", "ended", "in-case", "excluded", "two-units"
    }  # fmt: skip
    known = known_worklist(plan, today)
    stub.feed = feed_xml(plan)
    national = national_file(tmp_path, stub.url, UNITS)
    with start(backend, tmp_path, {"REKO_NATIONAL_FILE": str(national)}) as server:
        env = {"REKO_NATIONAL_FILE": str(national), "REKO_DATA_DIR": str(server.service.data_dir)}
        if server.database_url:
            env["REKO_DATABASE_URL"] = server.database_url
        units = {unit: Unit(server, unit) for unit in UNITS}
        owners = {unit: units[unit].organization() for unit in UNITS}
        # Cases first, through the API: those patients are no candidates at their unit.
        for unit in UNITS:
            for number, planned in enumerate(labelled(plan, "in-case", unit)):
                patient = units[unit].patient(planned.patient)
                units[unit].start_case(patient, owners[unit], number)
        outputs: list[str] = []

        first = import_all(env, outputs)
        excluded = {u: {p.patient for p in labelled(plan, "excluded", u)} for u in UNITS}
        for unit, summary in zip(UNITS, first, strict=True):
            # in window: the candidates and the excluded (not yet rejected); nothing closed.
            assert summary["created"] == len(known[unit]) + len(excluded[unit])
            assert (summary["updated"], summary["closed"]) == (0, 0)
        # A coordinator rejects the excluded ones with a reko-exclusion reason.
        for unit in UNITS:
            names = units[unit].personnummer()
            for task in units[unit].tasks(owners[unit], status="requested"):
                if names[task["for"]["reference"]] in excluded[unit]:
                    rejected = {k: v for k, v in task.items() if k != "meta"} | {
                        "status": "rejected",
                        "statusReason": c.concept(c.CS_EXCLUSION, "hel-sjukersattning"),
                    }
                    units[unit].send("PUT", f"/Task/{task['id']}", rejected)

        for unit in UNITS:
            assert worklist_of(units[unit], owners[unit]) == known[unit], unit
        versions = {u: _versions(units[u], owners[u]) for u in UNITS}
        provenances = {u: units[u].provenances() for u in UNITS}
        rows = server.service.row_counts() if backend == "sqlite" else None

        second = import_all(env, outputs)
        for unit, summary in zip(UNITS, second, strict=True):
            assert (summary["created"], summary["updated"], summary["closed"]) == (0, 0, 0)
            assert summary["unchanged"] == len(known[unit]) + len(excluded[unit])
            assert _versions(units[unit], owners[unit]) == versions[unit]
            assert units[unit].provenances() == provenances[unit]
            assert worklist_of(units[unit], owners[unit]) == known[unit]
        if rows is not None:
            assert server.service.row_counts() == rows
        rejected = [t for u in UNITS for t in units[u].tasks(owners[u], status="rejected")]
        assert len(rejected) == sum(len(e) for e in excluded.values())

        # A case started through the API closes its Task (accepted), and imports keep it so.
        unit = UNITS[0]
        (task, *_) = units[unit].tasks(owners[unit], status="requested")
        units[unit].start_case(task["for"]["reference"], owners[unit], 999)
        assert units[unit].send("GET", f"/Task/{task['id']}")["status"] == "accepted"
        import_all(env, outputs)
        assert units[unit].send("GET", f"/Task/{task['id']}")["status"] == "accepted"
        assert len(worklist_of(units[unit], owners[unit])) == len(known[unit]) - 1

        for text in outputs:
            assert_no_diagnosis(text, "the CLI's output")
        assert_no_diagnosis(server.service.log.read_text(encoding="utf-8"), "the server's log")
        assert_no_diagnosis(stored_text(server), "the database")
    # The stub did send them, every time.
    assert all(d.encode() in e.answer for e in stub.exchanges for d in DIAGNOSES[:3])
    assert len(stub.exchanges) == 3 * len(UNITS)


def _versions(unit: Unit, owner: str) -> dict[str, str]:
    return {t["id"]: t["meta"]["versionId"] for t in unit.tasks(owner)}


def test_the_generator_is_seeded_and_labels_what_it_plans() -> None:
    today = date(2026, 12, 3)
    plan = generate(SEED, today)
    assert [(p.patient, p.periods) for p in plan] == [
        (p.patient, p.periods) for p in generate(SEED, today)
    ]
    by_label: dict[str, list[PlannedSickLeave]] = {}
    for planned in plan:
        by_label.setdefault(planned.label, []).append(planned)
    assert all(p.periods[-1][1] < today for p in by_label["ended"])
    assert all((today - p.start).days >= 100 for p in by_label["out-of-window"])
    going = by_label["in-window"] + by_label["two-units"] + by_label["in-case"]
    assert all(0 <= (today - p.start).days <= 80 < 90 for p in going)
    assert all(p.periods[-1][1] > today for p in going)
    two = [p.patient for p in by_label["two-units"]]
    assert all(two.count(patient) == 2 for patient in two)
    # Certificates chain: at most 5 days between one period's end and the next one's start.
    for planned in plan:
        for (_, end, _), (begin, _, _) in zip(planned.periods, planned.periods[1:], strict=False):
            assert 0 <= (begin - end).days - 1 <= 5
