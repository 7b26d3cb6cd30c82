"""Issue 14's KVÅ statistics over a real ``reko-fhir serve`` and the real ``reko-fhir stats``:
the golden cases plus a seeded year at two more units; for every group, unit and month the
MeasureReport of ``$evaluate-measure`` and the CLI's rows equal what searches of that unit and
month count (``_summary=count``, or counted from the matches where no one search can).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reko_fhir.mapping import codings as c
from reko_fhir.store import Partitions, SqlRepository
from reko_fhir.store.repository import months
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import FIXTURES
from tests.kva_activity import Json, Key, fill_year, searched_counts
from tests.service import Service, start_service

GOLDEN = {
    "a-primary-care": "SE2321000016-VC01",
    "b-psychiatry-revoked-consent": "SE2321000016-PS03",
    "c-young-adult-activity-compensation": "SE2321000016-VC07",
}
GENERATED = ["SE2321000016-15CQ", "SE2321000016-7BN2"]
UNITS = [*GOLDEN.values(), *GENERATED]
MONTHS = months("2025-01", "2026-12")
READER = "user/*.rs"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A server holding the golden cases (each POSTed by its own unit) and the generated year."""
    running = start_service(tmp_path_factory.mktemp("kva") / "data")
    try:
        for case, unit in GOLDEN.items():
            body = (FIXTURES / "mapping" / case / "expected.json").read_bytes()
            answer = httpx.post(
                f"{running.base}/", content=body, headers=running.headers(unit=unit), timeout=60
            )
            assert answer.status_code == 200, answer.text
        asyncio.run(_fill(running.data_dir / "reko.sqlite3"))
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=15)


async def _fill(database: Path) -> None:
    store = await SqlRepository.open(f"sqlite+aiosqlite:///{database}")
    try:
        await fill_year(lambda u: store.scoped(Partitions.of_unit(u)), GENERATED, seed=2026)
    finally:
        await store.close()


class HttpSearches:
    """A unit's searches over HTTP, with its own token."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers

    async def total(self, kind: str, params: list[tuple[str, str]]) -> int:
        answer = await self.http.get(
            f"/{kind}", params=[*params, ("_summary", "count")], headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])

    async def matches(self, kind: str, params: list[tuple[str, str]]) -> list[Json]:
        found: list[Json] = []
        while True:
            asked = [*params, ("_count", "1000"), ("_offset", str(len(found)))]
            answer = await self.http.get(f"/{kind}", params=asked, headers=self.headers)
            assert answer.status_code == 200, answer.text
            page = [e["resource"] for e in answer.json().get("entry", [])]
            found += page
            if len(page) < 1000:
                return found


def _from_report(unit: str, label: str, report: Json) -> dict[Key, int]:
    found: dict[Key, int] = {}
    for group in report["group"]:
        name = group["code"]["coding"][0]["code"]
        found[(unit, label, name, None)] = group["population"][0]["count"]
        for stratifier in group.get("stratifier", []):
            for stratum in stratifier.get("stratum", []):
                part = stratum["value"]["coding"][0]["code"]
                found[(unit, label, name, part)] = stratum["population"][0]["count"]
    return {k: v for k, v in found.items() if v}


def _organization(service: Service, unit: str) -> str:
    answer = httpx.get(
        f"{service.base}/Organization",
        params={"identifier": f"{c.HSA}|{unit}"},
        headers=service.headers(unit=unit),
        timeout=10,
    )
    return f"Organization/{answer.json()['entry'][0]['resource']['id']}"


def _period(label: str) -> dict[str, str]:
    bucket = next(b for b in MONTHS if b.label == label)
    last = bucket.end.toordinal() - 1
    return {
        "periodStart": f"{label}-01",
        "periodEnd": bucket.end.fromordinal(last).date().isoformat(),
    }


async def _searched(service: Service) -> dict[Key, int]:
    async with httpx.AsyncClient(base_url=service.base, timeout=60) as http:
        headers = {u: service.headers(scope=READER, unit=u) for u in UNITS}
        return await searched_counts(lambda u: HttpSearches(http, headers[u]), UNITS, MONTHS)


@pytest.fixture(scope="module")
def searched(service: Service) -> dict[Key, int]:
    counted = asyncio.run(_searched(service))
    assert {k[0] for k in counted} == set(UNITS)
    assert {k[2] for k in counted} == {
        "gc001", "dv077", "aw026", "patienter", "nya-insatser", "inom-90-dagar", "meddelanden-fk"
    }  # fmt: skip
    return counted


def test_evaluate_measure_equals_the_searches_for_every_group_unit_and_month(
    service: Service, searched: dict[Key, int]
) -> None:
    validation = ValidationService(reko_definitions())
    with httpx.Client(base_url=service.base, timeout=60) as http:
        for unit in UNITS:
            subject = _organization(service, unit)
            headers = service.headers(scope=READER, unit=unit)
            for bucket in MONTHS:
                params = {**_period(bucket.label), "subject": subject}
                answer = http.get(
                    "/Measure/kva-statistik/$evaluate-measure", params=params, headers=headers
                )
                assert answer.status_code == 200, answer.text
                report = answer.json()
                mine = {k: v for k, v in searched.items() if k[:2] == (unit, bucket.label)}
                assert _from_report(unit, bucket.label, report) == mine, (unit, bucket.label)
        errors = [i for i in validation.validate(report) if i.is_error]
        assert errors == []
        # A platform token asks for any unit, by POST with Parameters as well.
        unit, label = GOLDEN["b-psychiatry-revoked-consent"], "2025-03"
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                *({"name": k, "valueDate": v} for k, v in _period(label).items()),
                {"name": "subject", "valueString": _organization(service, unit)},
                {"name": "reportType", "valueCode": "summary"},
            ],
        }
        platform = service.headers(scope="system/*.rs", all_units=True)
        answer = http.post(
            "/Measure/kva-statistik/$evaluate-measure", json=parameters, headers=platform
        )
        assert answer.status_code == 200, answer.text
        expected = {k: v for k, v in searched.items() if k[:2] == (unit, label)}
        assert expected[(unit, label, "gc001", None)] == 3
        assert _from_report(unit, label, answer.json()) == expected


def test_a_unit_reads_only_its_own_statistics_and_each_evaluation_is_logged(
    service: Service,
) -> None:
    unit, other = GENERATED
    headers = service.headers(scope=READER, unit=unit)
    with httpx.Client(base_url=service.base, timeout=30) as http:
        params = {"periodStart": "2026-01-01", "periodEnd": "2026-12-31"}
        refused = http.get(
            "/Measure/kva-statistik/$evaluate-measure",
            params={**params, "subject": _organization(service, other)},
            headers=headers,
        )
        assert refused.status_code == 403
        events = http.get("/AuditEvent", params={"_count": "1000"}, headers=headers).json()
        operations = [
            e for e in events.get("entry", []) if e["resource"]["subtype"][0]["code"] == "operation"
        ]
        mine = http.get("/Measure/kva-statistik/$evaluate-measure", params=params, headers=headers)
        assert mine.status_code == 200
        assert "subject" not in mine.json()  # its own unit: what its searches count
        after = http.get("/AuditEvent", params={"_count": "1000"}, headers=headers).json()
        logged = [
            e for e in after.get("entry", []) if e["resource"]["subtype"][0]["code"] == "operation"
        ]
        assert len(logged) == len(operations) + 1
        # Without the scopes to search what it counts, no statistics.
        narrow = service.headers(scope="user/Procedure.rs", unit=unit)
        assert (
            http.get(
                "/Measure/kva-statistik/$evaluate-measure", params=params, headers=narrow
            ).status_code
            == 403
        )
        measure = http.get("/Measure/kva-statistik", headers=headers)
        assert measure.json()["url"] == c.MEASURE_KVA_STATISTIK
        statement = http.get("/metadata").json()
        entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Measure")
        assert [o["name"] for o in entry["operation"]] == ["evaluate-measure"]


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        ({"periodEnd": "2026-01-31"}, "periodStart"),
        ({"periodStart": "2026-13", "periodEnd": "2026-12-31"}, "periodStart"),
        ({"periodStart": "2026-02-01", "periodEnd": "2026-01-31"}, "periodEnd"),
        ({"periodStart": "2026-01-01", "periodEnd": "2026-01-31T10:00:00Z"}, "periodEnd"),
        ({"periodStart": "2026", "periodEnd": "2026", "reportType": "individual"}, "reportType"),
        ({"periodStart": "2026", "periodEnd": "2026", "subject": "Patient/1"}, "subject"),
        ({"periodStart": "2026", "periodEnd": "2026", "subject": "Organization/none"}, "subject"),
        ({"periodStart": "2026", "periodEnd": "2026", "measure": "x"}, "measure"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    service: Service, params: dict[str, str], expression: str
) -> None:
    answer = httpx.get(
        f"{service.base}/Measure/kva-statistik/$evaluate-measure",
        params=params,
        headers=service.headers(scope=READER),
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]


def _cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reko_fhir", "stats", *args],
        env={**os.environ, "REKO_DATA_DIR": str(service.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_prints_the_searched_counts_per_unit_and_month(
    service: Service, searched: dict[Key, int]
) -> None:
    done = _cli(
        service, "--unit", "all", "--from", "2025-01", "--to", "2026-12", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(rows) == len(UNITS) * len(MONTHS)
    printed: dict[Key, int] = {}
    for row in rows:
        for column, value in row.items():
            if column in ("unit", "period") or not value:
                continue
            group, _, part = column.partition("/")
            printed[(row["unit"], row["period"], group, part or None)] = value
    assert printed == searched

    unit = GOLDEN["a-primary-care"]
    table = _cli(service, "--unit", unit, "--from", "2025-01", "--to", "2025-04")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["unit", "period", "gc001"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [unit, f"2025-0{m}", str(searched.get((unit, f"2025-0{m}", "gc001", None), 0))]
        for m in range(1, 5)
    ]
    as_csv = _cli(
        service,
        "--unit",
        unit,
        "--from",
        "2025-01",
        "--to",
        "2025-12",
        "--by",
        "period",
        "--format",
        "csv",
    )
    (whole,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (whole["period"], whole["gc001"], whole["dv077"], whole["aw026"]) == (
        "2025-01/2025-12",
        "5",
        "1",
        "1",
    )
    fhir = _cli(service, "--unit", unit, "--from", "2025-01", "--to", "2025-02", "--format", "fhir")
    bundle = json.loads(fhir.stdout)
    validation = ValidationService(reko_definitions())
    assert [i for i in validation.validate(bundle) if i.is_error] == []
    assert [e["resource"]["period"] for e in bundle["entry"]] == [
        {"start": "2025-01-01", "end": "2025-01-31"},
        {"start": "2025-02-01", "end": "2025-02-28"},
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--unit", "not-a-unit", "--from", "2026-01", "--to", "2026-02"],
        ["--unit", "all", "--from", "2026-13", "--to", "2026-02"],
        ["--unit", "all", "--from", "2026-03", "--to", "2026-02"],
        ["--unit", "all", "--from", "2000-01", "--to", "2026-02"],
    ],
)
def test_the_cli_refuses_bad_options_in_one_line(service: Service, args: list[str]) -> None:
    done = _cli(service, *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
