"""``reko-fhir sick-leaves import|history`` as real processes against the loopback RIVTA stub.

The stub checks every request against its contract's XSD (and fails the test otherwise); its
answers carry diagnoses, patient names and an invalid personnummer, and its faults name a
patient: none of it may reach the output, the logs or the store unmasked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from reko_fhir.config import Settings
from reko_fhir.delivery.rivta.schemas import located
from reko_fhir.store import Partitions
from reko_fhir.store.sql import SqlRepository
from tests.peers.rivta_stub import BAD_PNR, PNR, PNR_3, SNR, UNIT, RivtaStub
from tests.sick_leaves.conftest import assert_no_diagnosis, national_file, run_cli

ACTIVE = "ListActiveSickLeavesForCareUnit"


def environment(tmp_path: Path, stub: RivtaStub, **kw: object) -> dict[str, str]:
    path = national_file(tmp_path, stub.url, [UNIT], **kw)  # type: ignore[arg-type]
    return {"REKO_NATIONAL_FILE": str(path), "REKO_DATA_DIR": str(tmp_path / "data")}


def stored(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "data" / "reko.sqlite3") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(r) for t in tables for r in db.execute(f'SELECT * FROM "{t}"'))


def test_import_takes_the_certificates_and_says_what_it_left_out_where(
    tmp_path: Path, stub: RivtaStub
) -> None:
    env = environment(tmp_path, stub)
    done = run_cli("sick-leaves", "import", "--unit", UNIT, env=env)
    assert done.returncode == 0, done.stderr
    # The stub's certificates are from 2024: taken, but ended long ago, so no Task to assess.
    assert done.stdout == (
        f"{UNIT}: 2 certificate(s), 2 problem(s); "
        "worklist: 0 created, 0 updated, 0 unchanged, 0 closed\n"
    )
    problems = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert problems == [
        "error: ListActiveSickLeavesForCareUnitResponse.intygsLista.intygsData[1].arbetsformaga"
        ".formaga[0].nedsattning: 30 % is no sick-leave degree (25, 50, 75 or 100); the period "
        "is left out, not rounded",
        "error: ListActiveSickLeavesForCareUnitResponse.intygsLista.intygsData[2].patient"
        ".personId.extension: the patient number is invalid (the check digit of the "
        "personnummer is wrong); record left out",
    ]
    for text in (done.stdout, done.stderr, stored(tmp_path)):
        assert_no_diagnosis(text, "import")
        assert "Tolvansson" not in text
    for number in (PNR, SNR, BAD_PNR):
        assert number not in done.stdout + done.stderr
    (exchange,) = stub.exchanges
    assert exchange.logical_address == "SE2321000016-INTYG"
    assert (
        json.loads(run_cli("sick-leaves", "import", "--unit", UNIT, "-f", "json", env=env).stdout)[
            "certificates"
        ]
        == 2
    )


@pytest.mark.parametrize(
    ("mode", "code", "said", "attempts"),
    [
        ("fault", 1, f"{ACTIVE}: SOAP fault s:Server: Intygstjänsten kunde inte svara för", 1),
        ("error", 1, f"{ACTIVE}: resultCode ERROR: Fel för patient 19121212-****", 1),
        (
            "invalid-answer",
            1,
            f"{ACTIVE}: the answer breaks the contract: /r:{ACTIVE}Response/r:intygsLista: "
            "Element 'intygsLista': This element is not expected. Expected is ( vardgivare ).",
            1,
        ),
        ("503", 3, f"{ACTIVE}: HTTP 503", 3),
        ("reset", 3, f"{ACTIVE}: the service could not be reached", 3),
    ],
)
def test_a_failure_is_one_located_line_and_its_exit_code(
    tmp_path: Path, stub: RivtaStub, mode: str, code: int, said: str, attempts: int
) -> None:
    stub.mode = mode
    done = run_cli("sick-leaves", "import", "--unit", UNIT, env=environment(tmp_path, stub))
    assert done.returncode == code, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("reko-fhir:")]
    assert line.startswith(f"reko-fhir: {said}"), line
    assert done.stdout == ""
    assert PNR not in done.stderr
    # Only what may pass on a retry is retried, as often as the national file allows (3).
    assert len(stub.exchanges) == attempts
    retries = [json.loads(x) for x in done.stderr.splitlines() if '"national.retry"' in x]
    assert [r["attempt"] for r in retries] == list(range(1, attempts))


def test_configuration_errors_are_one_line_and_exit_2(tmp_path: Path, stub: RivtaStub) -> None:
    env = environment(tmp_path, stub)
    other = run_cli("sick-leaves", "import", "--unit", "SE2321000016-E999", env=env)
    assert other.returncode == 2
    assert other.stderr.strip() == (
        f"reko-fhir: {ACTIVE}: the national file has no logical address for SE2321000016-E999"
    )
    without = {k: v for k, v in env.items() if k != "REKO_NATIONAL_FILE"}
    unset = run_cli("sick-leaves", "import", "--unit", UNIT, env=without)
    assert (unset.returncode, unset.stderr.strip()) == (
        2,
        "reko-fhir: set REKO_NATIONAL_FILE to the national services file",
    )
    broken = tmp_path / "broken.yaml"
    for text, said in [
        ("contracts: [", "is not YAML"),
        ("contracts: {ListActiveSickLeavesForCareUnit: {base_url: ftp://x, logical_addresses: "
         "{SE2321000016-E001: A}}}", "contracts.ListActiveSickLeavesForCareUnit.base_url"),
        ("contracts: {ListSickLeavesForCare: {base_url: http://x, logical_addresses: "
         "{E001: A}}}", "'E001' is no HSA-id"),
        ("contracts: {ListSickLeavesForCare: {base_url: http://x, logical_addresses: "
         "{SE2321000016-E001: A}}}\nschedule: {interval_seconds: 60, units: [SE2321000016-E001]}",
         "schedule: needs contracts.ListActiveSickLeavesForCareUnit"),
        ("contracts: {ListActiveSickLeavesForCareUnit: {base_url: http://x, logical_addresses: "
         "{SE2321000016-E001: A}}}\nschedule: {interval_seconds: 60, units: [SE2321000016-E002]}",
         "schedule.units: no ListActiveSickLeavesForCareUnit logical address for SE2321000016-E002"),
        ("contracts: {ListActiveSickLeavesForCareUnit: {base_url: http://x, logical_addresses: "
         "{SE2321000016-E001: A}, tls: {cert_file: nope.pem, key_file: nope.key, ca_file: ca.pem}}}",
         "ListActiveSickLeavesForCareUnit.tls.cert_file nope.pem: no such file"),
        ("contracts: {ListActiveSickLeavesForCareUnit: {base_url: http://x, logical_addresses: "
         f"{{SE2321000016-E001: A}}, tls: {{cert_file: {broken}, key_file: {broken}, "
         f"ca_file: {broken}}}}}}}", "ListActiveSickLeavesForCareUnit.tls:"),
    ]:  # fmt: skip
        broken.write_text(text, encoding="utf-8")
        # Any command refuses to start on it, before it opens the store.
        done = run_cli("worklist", "--unit", UNIT, env={**env, "REKO_NATIONAL_FILE": str(broken)})
        assert done.returncode == 2, (text, done.stderr)
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"reko-fhir: {broken}"), line
        assert said in line, line
    assert stub.exchanges == []


def test_history_shows_the_patients_cases_without_diagnosis(
    tmp_path: Path, stub: RivtaStub
) -> None:
    env = environment(tmp_path, stub)
    table = run_cli("sick-leaves", "history", "--unit", UNIT, "--patient", PNR_3, env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "Start       End         Days  Degree %  Degrees  Certificates  Doctor",
        "2024-04-01  2024-04-30  42                       2             SE2321000016-D001",
        "2024-02-01  2024-03-10  42    75        75       2             SE2321000016-D001",
        "2 sick-leave case(s) of 19790512-**** at SE2321000016-E001",
    ]
    # The producer's 30 % is no degree: said where, not shown as one.
    assert any(
        line.startswith("error: ListSickLeavesForCareResponse.sjukfallLista.sjukfall[2]")
        and "aktivGrad" in line
        for line in table.stderr.splitlines()
    ), table.stderr
    answer = run_cli(
        "sick-leaves", "history", "--unit", UNIT, "--patient", PNR, "-f", "json", env=env
    )
    assert json.loads(answer.stdout) == [
        {
            "start": "2024-01-08",
            "end": "2024-02-18",
            "days": 42,
            "degree": 50,
            "degrees": [100, 50],
            "certificates": 2,
            "doctor": "SE2321000016-D001",
        }
    ]
    for done in (table, answer):
        assert_no_diagnosis(done.stdout + done.stderr, "history")
        assert "Tolvansson" not in done.stdout + done.stderr
        assert PNR not in done.stderr  # the logs
        assert PNR_3 not in done.stderr
    assert [e.action.rsplit(":", 1)[1] for e in stub.exchanges] == ["ListSickLeavesForCare"] * 2
    refused = run_cli("sick-leaves", "history", "--unit", UNIT, "--patient", BAD_PNR, env=env)
    assert refused.returncode == 2
    assert BAD_PNR not in refused.stderr
    stub.mode = "fault"
    fault = run_cli("sick-leaves", "history", "--unit", UNIT, "--patient", PNR, env=env)
    assert fault.returncode == 1
    assert "reko-fhir: ListSickLeavesForCare: SOAP fault s:Server:" in fault.stderr


async def _store_patient(data: Path, unit: str, number: str) -> str:
    """A Patient with ``number`` in ``unit``'s partition; its id."""
    repository = await SqlRepository.open(Settings(data_dir=data).sqlalchemy_url())
    try:
        async with repository.scoped(Partitions.of_unit(unit)).unit() as session:
            system = "http://electronichealth.se/identifier/personnummer"
            patient = {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": number}],
            }
            return (await session.create(patient)).id
    finally:
        await repository.close()


def audit_rows(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(tmp_path / "data" / "reko.sqlite3") as db:
        query = "SELECT agent, unit, action, content FROM audit_event ORDER BY recorded"
        return list(db.execute(query))


def test_history_is_in_the_access_log_naming_the_units_own_patient(
    tmp_path: Path, stub: RivtaStub
) -> None:
    env = environment(tmp_path, stub)
    (tmp_path / "data").mkdir()
    local = asyncio.run(_store_patient(tmp_path / "data", UNIT, PNR))
    other_unit = asyncio.run(_store_patient(tmp_path / "data", "SE2321000016-X999", PNR))
    reader = "SE2321000016-U042"
    known = run_cli(
        "sick-leaves", "history", "--unit", UNIT, "--patient", PNR, "--user", reader, env=env
    )
    assert known.returncode == 0, known.stderr
    unknown = run_cli("sick-leaves", "history", "--unit", UNIT, "--patient", PNR_3, env=env)
    assert unknown.returncode == 0, unknown.stderr
    stub.mode = "fault"  # nothing was shown: nothing is logged
    assert run_cli("sick-leaves", "history", "--unit", UNIT, "--patient", PNR, env=env).returncode
    rows = audit_rows(tmp_path)
    assert [(agent, unit, action) for agent, unit, action, _ in rows] == [
        (reader, UNIT, "R"),
        (UNIT, UNIT, "R"),
    ]
    events = [json.loads(content) for *_, content in rows]
    named = [[e["what"]["reference"] for e in event["entity"] if "what" in e] for event in events]
    # The unit's own Patient is named; the same number in another unit's partition is not.
    assert f"Patient/{local}" in named[0]
    assert f"Patient/{other_unit}" not in named[0] + named[1]
    assert not any(n.startswith("Patient/") for n in named[1])
    for event, number in zip(events, (PNR, PNR_3), strict=True):
        (query,) = [base64.b64decode(e["query"]).decode() for e in event["entity"] if "query" in e]
        # Masked, the number's date part only: the access log is read by many.
        assert query == f"ListSickLeavesForCare?patient={number[:8]}-****"
        assert number not in json.dumps(event)


def test_a_contract_message_never_quotes_a_diagnosis() -> None:
    entry = SimpleNamespace(
        path="/r:ListSickLeavesForCareResponse/r:sjukfallLista/r:sjukfall[1]/r:diagnoskod/r:code",
        message="Element '{urn:x}code': [facet 'maxLength'] The value 'F432' has a length of 4",
        line=1,
    )
    assert located(entry) == (  # type: ignore[arg-type]
        "/r:ListSickLeavesForCareResponse/r:sjukfallLista/r:sjukfall[1]/r:diagnoskod/r:code: "
        "Element 'code': [facet 'maxLength'] The value '(withheld)' has a length of 4"
    )
