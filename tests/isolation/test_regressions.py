"""Issue 11's items 1–8, each on a real ``reko-fhir serve`` (SQLite and PostgreSQL).

Each test uses care units of its own (so the module shares one server per backend), and says
what main before the partitions (211f0c2) answered, as the issue records it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from reko_fhir.domain.identifiers import luhn_check_digit
from tests.isolation.conftest import (
    BACKENDS,
    FK,
    HSA,
    PNR,
    Server,
    bare_patient,
    case,
    start,
    without_server_fields,
)

Json = dict[str, Any]
DEAD_TARGET = json.dumps(
    {
        "targets": [
            {
                "name": "ehr-down",
                "base_url": "http://127.0.0.1:9/fhir",  # discard port: nothing answers
                "resource_types": ["Procedure"],
                "timeout": 1,
                "retry": {"max_attempts": 1},
            }
        ]
    }
)
AUDIT_FAILS_FOR = "SE2321000016-NOLOG"  # the staff whose access-log rows the database refuses


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"regressions-{request.param}")
    with start(request.param, folder, {"REKO_TARGETS": DEAD_TARGET}) as running:
        yield running


def pnr(birth: str, serial: str) -> str:
    """A valid personnummer (Luhn) for ``birth`` (YYYYMMDD) and a three-digit ``serial``."""
    body = birth + serial
    return body + str(luhn_check_digit(body[2:]))


def token(
    server: Server, unit: str, scope: str = "user/*.cruds", subject: str | None = None
) -> dict[str, str]:
    signed = server.service.token(scope, unit=unit, subject=subject or f"{unit[:13]}STAFF")
    return {"authorization": f"Bearer {signed}", "content-type": "application/fhir+json"}


def send(
    server: Server, headers: dict[str, str], method: str, url: str, body: Any = None, **kw: Any
) -> Any:
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    extra = kw.pop("extra", {})
    return server.http.request(method, url, content=content, headers={**headers, **extra}, **kw)


def post_case(server: Server, headers: dict[str, str], bundle: Json) -> Json:
    answer = send(server, headers, "POST", "/", bundle)
    assert answer.status_code == 200, answer.text
    result: Json = answer.json()
    return result


def with_patient(bundle: Json, old: str, new: str) -> Json:
    rewritten: Json = json.loads(json.dumps(bundle, ensure_ascii=False).replace(old, new))
    return rewritten


def total(server: Server, headers: dict[str, str], url: str, **params: str) -> int:
    answer = send(server, headers, "GET", url, params={**params, "_summary": "count"})
    assert answer.status_code == 200, answer.text
    found: int = answer.json()["total"]
    return found


# -- 1 -----------------------------------------------------------------------------------------
def test_1_the_same_staff_at_two_units_takes_nothing_over(server: Server) -> None:
    """Before: VC02's case with VC01's staff matched VC01's PractitionerRoles, after which VC02
    saw VC01's CarePlan and 7 Procedures and VC01's own CarePlan search found 0."""
    a_unit, b_unit = "SE2321000016-I1AA", "SE2321000016-I1BB"
    a, b = token(server, a_unit), token(server, b_unit)
    a_case = case("a-primary-care", a_unit)
    b_case = with_patient(case("a-primary-care", b_unit), "197804122385", pnr("19850303", "123"))
    post_case(server, a, a_case)
    a_plan = send(server, a, "GET", "/CarePlan").json()
    b_answer = post_case(server, b, b_case)
    roles = [
        done["response"]["status"]
        for entry, done in zip(b_case["entry"], b_answer["entry"], strict=True)
        if entry["resource"]["resourceType"] == "PractitionerRole"
    ]
    assert roles == ["201 Created"] * 3  # B's own staff entries, not A's matched
    for headers in (a, b):
        assert total(server, headers, "/CarePlan") == 1
        assert total(server, headers, "/Procedure") == 7
        assert total(server, headers, "/Patient") == 1
    assert send(server, a, "GET", "/CarePlan").json() == a_plan  # A's view unchanged
    # A's coordinator is still at A's unit, B's at B's: two PractitionerRoles, one person.
    staff = send(
        server,
        a,
        "GET",
        "/PractitionerRole",
        params={"identifier": f"{HSA}|SE2321000016-R3K7", "_count": "1000"},
    ).json()
    units = set()
    for entry in staff["entry"]:
        org = entry["resource"]["organization"]["reference"]
        units.add(send(server, a, "GET", f"/{org}").json()["identifier"][0]["value"])
    assert {a_unit, b_unit} <= units


# -- 2 -----------------------------------------------------------------------------------------
def test_2_a_conditional_create_reveals_no_other_units_patient(server: Server) -> None:
    """Before: A's POST /Patient with If-None-Exist on a personnummer only B held answered 200
    with B's id, version count and last change."""
    a, b = token(server, "SE2321000016-I2AA"), token(server, "SE2321000016-I2BB")
    held_by_b, nobodys = pnr("19700101", "234"), pnr("19700101", "345")
    created = send(server, b, "POST", "/Patient", bare_patient(held_by_b))
    b_id = created.json()["id"]
    assert total(server, a, "/Patient", identifier=held_by_b) == 0
    answers = {}
    for number in (held_by_b, nobodys):
        answer = send(
            server,
            a,
            "POST",
            "/Patient",
            bare_patient(number),
            extra={"if-none-exist": f"identifier={PNR}|{number}"},
        )
        answers[number] = answer
        assert answer.status_code == 201, answer.text
        assert answer.headers["location"].endswith("/_history/1")
        assert answer.json()["meta"]["versionId"] == "1"
    assert b_id not in answers[held_by_b].text + json.dumps(dict(answers[held_by_b].headers))
    assert set(answers[held_by_b].headers) == set(answers[nobodys].headers)
    assert send(server, b, "GET", f"/Patient/{b_id}").json()["meta"]["versionId"] == "1"


# -- 3 -----------------------------------------------------------------------------------------
def test_3_a_communication_to_forsakringskassan_without_sender_is_accepted(server: Server) -> None:
    """Before: 403 "the Communication is held by another care unit than the token's" — the
    external recipient was counted as a holder."""
    unit = "SE2321000016-I3AA"
    bundle = case("b-psychiatry-revoked-consent", unit)
    notice = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"
    )
    notice.pop("sender")
    answer = post_case(server, token(server, unit), bundle)
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * len(
        bundle["entry"]
    )
    stored = send(server, token(server, unit), "GET", "/Communication").json()
    assert stored["total"] == 1
    assert "sender" not in stored["entry"][0]["resource"]
    recipient = stored["entry"][0]["resource"]["recipient"][0]["reference"]
    organization = send(server, token(server, unit), "GET", f"/{recipient}").json()
    assert "|".join(organization["identifier"][0].values()) == FK  # Försäkringskassan


# -- 4 -----------------------------------------------------------------------------------------
def test_4_a_created_patient_is_read_back_at_its_location(server: Server) -> None:
    """Before: 201 with a Location, then 404 on GET until a Consent or CarePlan named it."""
    headers = token(server, "SE2321000016-I4AA")
    created = send(server, headers, "POST", "/Patient", bare_patient(pnr("19600606", "456")))
    assert created.status_code == 201, created.text
    read = send(server, headers, "GET", "/" + created.headers["location"])
    assert read.status_code == 200, read.text
    assert read.json()["id"] == created.json()["id"]
    current = send(server, headers, "GET", f"/Patient/{created.json()['id']}")
    assert current.status_code == 200


# -- 5 -----------------------------------------------------------------------------------------
def test_5_no_unit_attaches_to_reads_overwrites_or_squats_anothers_patient(server: Server) -> None:
    """Before: B's EpisodeOfCare naming A's Patient let B read it and all its versions, and
    B's PUT changed what A read; B's bare Patient with a personnummer A had not sent yet made
    A's transaction fail (404), and B's conditional update on A's personnummer named A's id."""
    a_unit, b_unit = "SE2321000016-I5AA", "SE2321000016-I5BB"
    a, b = token(server, a_unit), token(server, b_unit)
    a_case = case("a-primary-care", a_unit)
    post_case(server, a, a_case)
    a_patient = send(server, a, "GET", "/Patient").json()["entry"][0]["resource"]
    pid = a_patient["id"]
    # Attach: B's EpisodeOfCare naming A's patient is refused as naming an unknown patient
    # (422, as for an id that never existed), and opens nothing.
    post_case(
        server,
        b,
        with_patient(case("a-primary-care", b_unit), "197804122385", pnr("19810101", "789")),
    )
    episode = send(server, b, "GET", "/EpisodeOfCare").json()["entry"][0]["resource"]
    b_episode = {**without_server_fields(episode), "patient": {"reference": f"Patient/{pid}"}}
    b_episode["identifier"] = [{**episode["identifier"][0], "value": "REKO-I5-B"}]
    attached = send(server, b, "POST", "/EpisodeOfCare", b_episode)
    assert attached.status_code == 422, attached.text
    assert attached.json()["issue"][0]["expression"] == ["EpisodeOfCare.patient"]
    for url in (
        f"/Patient/{pid}",
        f"/Patient/{pid}/_history",
        f"/Patient/{pid}/_history/1",
        f"/Patient/{pid}/$everything",
    ):
        assert send(server, b, "GET", url).status_code == 404, url
    # Overwrite: B's PUT answers as for a missing patient and changes nothing.
    overwrite = {**without_server_fields(a_patient), "id": pid, "name": [{"family": "Squatter"}]}
    assert send(server, b, "PUT", f"/Patient/{pid}", overwrite).status_code == 404
    assert send(server, a, "GET", f"/Patient/{pid}").json() == a_patient
    # Conditional update by B on A's personnummer: B's own new Patient, A's id not named.
    cond = send(
        server,
        b,
        "PUT",
        f"/Patient?identifier={PNR}|197804122385",
        bare_patient("197804122385", "Other"),
    )
    assert cond.status_code == 201, cond.text
    assert pid not in cond.text
    assert send(server, a, "GET", f"/Patient/{pid}").json() == a_patient
    # Squat: B sends a bare Patient with a personnummer A has not sent; A's case still goes in.
    later = pnr("19920202", "567")
    squat = send(server, b, "POST", "/Patient", bare_patient(later))
    assert squat.status_code == 201
    c_case = with_patient(
        case("c-young-adult-activity-compensation", a_unit), "200209170638", later
    )
    answer = post_case(server, a, c_case)
    assert all(e["response"]["status"] == "201 Created" for e in answer["entry"][3:])
    found = send(server, a, "GET", "/Patient", params={"identifier": later}).json()
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["id"] != squat.json()["id"]
    assert (
        send(server, b, "GET", f"/Patient/{squat.json()['id']}").json()["name"]
        == squat.json()["name"]
    )


# -- 6 -----------------------------------------------------------------------------------------
def cli_token(server: Server, *options: str) -> dict[str, str]:
    """A token from the real ``reko-fhir token`` command, on the server's data folder."""
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "token", *options],
        env={**os.environ, "REKO_DATA_DIR": str(server.service.data_dir)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    signed = done.stdout.strip().splitlines()[-1]
    return {"authorization": f"Bearer {signed}", "content-type": "application/json"}


def dead_letter(server: Server, admin: dict[str, str]) -> Json:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = send(server, admin, "GET", "/_outbox/messages", params={"status": "dead"}).json()
        if found["messages"]:
            message: Json = found["messages"][0]
            return message
        time.sleep(0.3)
    raise AssertionError("no dead letter within 30 s")


def test_6_the_outbox_is_partitioned_audited_and_replays_only_valid_edits(server: Server) -> None:
    """Before: a token of unit B with reko/admin read unit A's message (its payload, note
    included) unlogged, and an edited replay went out unvalidated (200)."""
    a_unit, b_unit = "SE2321000016-I6AA", "SE2321000016-I6BB"
    post_case(server, token(server, a_unit), case("a-primary-care", a_unit))
    a_admin = cli_token(server, "--scope", "user/*.cruds reko/admin", "--unit", a_unit)
    b_admin = cli_token(server, "--scope", "user/*.cruds reko/admin", "--unit", b_unit)
    letter = dead_letter(server, a_admin)
    number = letter["id"]
    # B's operator: A's messages are not there, by list, by id, or to replay.
    for status in ("dead", "pending", "delivered", "all"):
        listed = send(server, b_admin, "GET", "/_outbox/messages", params={"status": status}).json()
        assert listed == {"messages": []}, status
    assert send(server, b_admin, "GET", f"/_outbox/messages/{number}").status_code == 404
    assert send(server, b_admin, "POST", f"/_outbox/messages/{number}/$replay").status_code == 404
    assert send(server, b_admin, "DELETE", f"/_outbox/messages/{number}").json() == {"purged": 0}
    assert send(server, b_admin, "POST", "/_outbox/$replay").json() == {"replayed": 0}
    assert send(server, b_admin, "POST", "/_outbox/$purge").json() == {"purged": 0}
    assert send(server, a_admin, "GET", f"/_outbox/messages/{number}").json()["status"] == "dead"
    # A's operator reads it, and the read is in A's access log with the patient.
    shown = send(server, a_admin, "GET", f"/_outbox/messages/{number}").json()
    assert shown["payload"]["resourceType"] == "Procedure"
    patient = shown["payload"]["subject"]["reference"]
    log = send(
        server,
        token(server, a_unit, "user/*.cruds"),
        "GET",
        "/AuditEvent",
        params={"patient": patient, "_count": "1000"},
    ).json()
    outbox_reads = [
        e
        for e in log["entry"]
        if any(
            x.get("what", {}).get("reference") == shown["resource"].rsplit("/_history", 1)[0]
            for x in e["resource"].get("entity", [])
        )
        and e["resource"]["action"] == "R"
    ]
    assert outbox_reads
    # An invalid edit: 422, and the message stays as it was (dead, not queued).
    edited = json.loads(json.dumps(shown["payload"]))
    edited["subject"] = {"identifier": {"system": PNR, "value": "199999999999"}}
    edited["unknownElement"] = True
    edited["status"] = "not-a-code"
    refused = send(server, a_admin, "POST", f"/_outbox/messages/{number}/$replay", edited)
    assert refused.status_code == 422, refused.text
    again = send(server, a_admin, "GET", f"/_outbox/messages/{number}").json()
    assert (again["status"], again["attempts"], again["payload"]) == (
        "dead",
        shown["attempts"],
        shown["payload"],
    )
    assert send(server, a_admin, "POST", f"/_outbox/messages/{number}/$replay").json() == {
        "replayed": 1
    }


# -- 7 -----------------------------------------------------------------------------------------
def test_7_another_units_id_answers_404_in_the_time_of_a_random_one(server: Server) -> None:
    """Before: a median 4.1 ms for a random id, 8.4 ms for another unit's (150 samples)."""
    a_unit = "SE2321000016-I7AA"
    post_case(server, token(server, a_unit), case("c-young-adult-activity-compensation", a_unit))
    procedures = send(server, token(server, a_unit), "GET", "/Procedure").json()["entry"]
    theirs = [e["resource"]["id"] for e in procedures]
    b = token(server, "SE2321000016-I7BB")
    times: dict[str, list[float]] = {"theirs": [], "random": []}
    for n in range(110):
        for kind, rid in (("theirs", theirs[n % len(theirs)]), ("random", str(uuid.uuid4()))):
            started = time.perf_counter()
            answer = send(server, b, "GET", f"/Procedure/{rid}")
            elapsed = time.perf_counter() - started
            assert answer.status_code == 404
            if n >= 10:  # the first are warm-up
                times[kind].append(elapsed)
    ratio = statistics.median(times["theirs"]) / statistics.median(times["random"])
    assert 1 / 1.5 < ratio < 1.5, ratio


# -- 8 -----------------------------------------------------------------------------------------
def events_about(server: Server, headers: dict[str, str], patient: str) -> list[Json]:
    log = send(
        server, headers, "GET", "/AuditEvent", params={"patient": patient, "_count": "1000"}
    ).json()
    return [e["resource"] for e in log.get("entry", [])]


def refs(event: Json) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", []) if "what" in e}


def test_8_transactions_deletes_and_batches_are_logged_with_their_patient_and_resources(
    server: Server,
) -> None:
    """Before: AuditEvents of transactions and deletes had no entity, and a batch was logged
    as a transaction."""
    unit = "SE2321000016-I8AA"
    headers = token(server, unit)
    answer = post_case(server, headers, case("a-primary-care", unit))
    written = {"/".join(e["response"]["location"].split("/")[:2]) for e in answer["entry"]}
    patient = next(r for r in written if r.startswith("Patient/"))
    transaction = [
        e
        for e in events_about(server, headers, patient)
        if e["subtype"][0]["code"] == "transaction"
    ]
    assert len(transaction) == 1
    assert written <= refs(transaction[0])
    procedure = next(r for r in written if r.startswith("Procedure/"))
    assert send(server, headers, "DELETE", f"/{procedure}").status_code == 204
    deletes = [
        e for e in events_about(server, headers, patient) if e["subtype"][0]["code"] == "delete"
    ]
    assert len(deletes) == 1
    assert {patient, procedure} <= refs(deletes[0])
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "DELETE", "url": procedure.replace("Procedure/", "CarePlan/")}}
        ],
    }
    assert send(server, headers, "POST", "/", batch).status_code == 200
    logged = send(server, token(server, unit), "GET", "/AuditEvent", params={"_count": "1"}).json()
    assert logged["entry"][0]["resource"]["subtype"][0]["code"] == "batch"


def refuse_audit_rows(server: Server, agent: str) -> None:
    """Make the database refuse access-log rows of ``agent`` (a trigger), as a full disk or a
    broken log table would."""
    if server.backend == "sqlite":
        with sqlite3.connect(server.service.data_dir / "reko.sqlite3") as conn:
            conn.execute(
                f"CREATE TRIGGER IF NOT EXISTS refuse_log BEFORE INSERT ON audit_event "
                f"WHEN NEW.agent = '{agent}' BEGIN SELECT RAISE(ABORT, 'log refused'); END"
            )
        return
    assert server.database_url
    with psycopg.connect(server.database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION refuse_log() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.agent = '{agent}' THEN RAISE EXCEPTION 'log refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.execute(
            "CREATE TRIGGER refuse_log BEFORE INSERT ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION refuse_log()"
        )


def stored_versions(server: Server) -> int:
    """Rows of resource_version, read from the database itself (every unit's, every version)."""
    query = "SELECT count(*) FROM resource_version"
    if server.backend == "sqlite":
        with sqlite3.connect(server.service.data_dir / "reko.sqlite3") as conn:
            return int(conn.execute(query).fetchone()[0])
    assert server.database_url
    with psycopg.connect(server.database_url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def test_8_a_write_whose_log_fails_leaves_nothing_committed(server: Server) -> None:
    """Before: 500, but the write had committed (the log was written afterwards, apart)."""
    unit = "SE2321000016-I8BB"
    refuse_audit_rows(server, AUDIT_FAILS_FOR)
    unlogged = token(server, unit, subject=AUDIT_FAILS_FOR)
    logged = token(server, unit)
    number = pnr("19770707", "678")
    before = stored_versions(server)
    created = send(server, unlogged, "POST", "/Patient", bare_patient(number))
    assert created.status_code == 500, created.text
    assert created.json()["resourceType"] == "OperationOutcome"
    assert stored_versions(server) == before
    assert total(server, logged, "/Patient", identifier=number) == 0
    transaction = case("a-primary-care", unit)
    refused = send(server, unlogged, "POST", "/", transaction)
    assert refused.status_code == 500, refused.text
    assert stored_versions(server) == before
    for kind in ("Patient", "Procedure", "CarePlan", "Provenance"):
        assert total(server, logged, f"/{kind}") == 0, kind
    assert total(server, logged, "/Organization", identifier=f"{HSA}|{unit}") == 0
    # The same writes by staff whose log works go in.
    assert send(server, logged, "POST", "/Patient", bare_patient(number)).status_code == 201


# -- found by this suite, after the items --------------------------------------------------------
def test_no_unit_writes_entries_of_another_units_directory(server: Server) -> None:
    """The directory is read by all: a unit could write an Organization with another unit's
    HSA-id, or a PractitionerRole at another unit's Organization, and so spoof its entries."""
    own, other = "SE2321000016-D1AA", "SE2321000016-D2BB"
    post_case(server, token(server, own), case("a-primary-care", own))
    (organization,) = send(
        server, token(server, other), "GET", "/Organization", params={"identifier": f"{HSA}|{own}"}
    ).json()["entry"]
    spoof = without_server_fields(organization["resource"])
    spoof.pop("id", None)
    refused = send(server, token(server, other), "POST", "/Organization", spoof)
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Organization.identifier"]

    bundle = case("a-primary-care", other)
    role = next(
        without_server_fields(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "PractitionerRole"
    )
    role["organization"] = {"reference": f"Organization/{organization['resource']['id']}"}
    refused = send(server, token(server, other), "POST", "/PractitionerRole", role)
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["PractitionerRole.organization"]
    # Its own Organization with its own HSA-id is the unit's to write, as ever.
    assert send(server, token(server, other), "POST", "/", bundle).status_code == 200


def test_another_units_consent_releases_no_notice_to_an_external_actor(server: Server) -> None:
    """Försäkringskassan reads a notice only while a consent *of the unit holding it* covers it:
    a Consent another unit writes naming the same Patient id releases nothing."""
    holder, other = "SE2321000016-E1AA", "SE2321000016-E2BB"
    post_case(server, token(server, holder), case("b-psychiatry-revoked-consent", holder))
    notices = send(server, server.headers("external"), "GET", "/Communication").json()
    before = {e["resource"]["id"] for e in notices.get("entry", [])}
    patient = send(server, token(server, holder), "GET", "/Patient").json()["entry"][0]
    post_case(server, token(server, other), case("b-psychiatry-revoked-consent", other))
    theirs = send(server, token(server, other), "GET", "/Consent").json()["entry"]
    covering = next(
        without_server_fields(e["resource"])
        for e in theirs
        if e["resource"]["identifier"][0]["value"].endswith("-2")
    )
    covering.pop("id", None)
    covering["status"] = "active"
    covering["identifier"][0]["value"] = "SAM-RELEASE-1"
    covering["extension"] = [x for x in covering["extension"] if "revoked" not in json.dumps(x)]
    covering["patient"] = {"reference": f"Patient/{patient['resource']['id']}"}
    covering["provision"]["period"].pop("end")  # in force today
    written = send(server, token(server, other), "POST", "/Consent", covering)
    # Written or refused, the holder's notice stays unreleased.
    assert written.status_code in (201, 404, 422), written.text
    notices = send(server, server.headers("external"), "GET", "/Communication").json()
    assert {e["resource"]["id"] for e in notices.get("entry", [])} == before
