"""Who may see and do what, against the real service on loopback.

Two care units each hold one case of the fixtures (VC01: a-primary-care, PS03:
b-psychiatry-revoked-consent); Försäkringskassan is an external actor named by case b's notice.
Every interaction is tried with no token, an expired one, one of the wrong scope, one of the
other unit, one of the external actor (with and without a consent covering it) and the right
one. Another unit's data must answer as absent — even in search totals — and every request
must leave an AuditEvent.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.golden import FIXTURES
from tests.security.conftest import FK, Service

UNIT_A, UNIT_B = "SE2321000016-VC01", "SE2321000016-PS03"
STAFF_B = "SE2321000016-K2M5"
Json = dict[str, Any]


def case(name: str) -> Json:
    bundle: Json = json.loads((FIXTURES / "mapping" / name / "expected.json").read_text("utf-8"))
    return bundle


@dataclass
class World:
    service: Service
    http: httpx.Client
    requests: list[str]
    procedure_b: Json
    patient_b: str
    communication_b: str

    def headers(self, who: str) -> dict[str, str]:
        token = {
            "right": lambda: self.service.token(unit=UNIT_B, subject=STAFF_B),
            "other unit": lambda: self.service.token(unit=UNIT_A),
            "wrong scope": lambda: self.service.token("system/Organization.rs", unit=UNIT_B),
            "expired": lambda: self.service.token(unit=UNIT_B, lifetime=-120),
            "external": lambda: self.service.token(
                "system/Communication.rs", external_actor=FK, subject="SE2021005521-FK01"
            ),
            "platform": lambda: self.service.token(all_units=True),
        }.get(who)
        headers = {"content-type": "application/fhir+json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token()}"
        return headers


@pytest.fixture(scope="module")
def world(service: Service) -> Iterator[World]:
    requests: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.path not in ("/metadata", "/healthz"):
            requests.append(f"{request.method} {request.url.path}")

    with httpx.Client(base_url=service.base, timeout=60, event_hooks={"request": [count]}) as http:
        for name, unit in (("a-primary-care", UNIT_A), ("b-psychiatry-revoked-consent", UNIT_B)):
            answer = http.post("/", json=case(name), headers=service.headers(unit=unit))
            assert answer.status_code == 200, answer.text
        b = service.headers(unit=UNIT_B)
        procedure = http.get("/Procedure", params={"_count": "1"}, headers=b).json()
        communication = http.get("/Communication", headers=b).json()
        patient = http.get("/Patient", headers=b).json()
        assert (procedure["total"], communication["total"], patient["total"]) == (9, 1, 1)
        yield World(
            service,
            http,
            requests,
            procedure["entry"][0]["resource"],
            patient["entry"][0]["resource"]["id"],
            communication["entry"][0]["resource"]["id"],
        )


def new_procedure(world: World) -> Json:
    procedure = copy.deepcopy(world.procedure_b)
    for key in ("id", "meta"):
        procedure.pop(key, None)
    procedure["identifier"][0]["value"] = f"J-{time.monotonic_ns()}"
    return procedure


def throwaway(world: World) -> str:
    """A Procedure of unit B made for one delete attempt."""
    answer = world.http.post(
        "/Procedure", json=new_procedure(world), headers=world.headers("right")
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


INTERACTIONS: dict[str, Callable[[World, dict[str, str]], httpx.Response]] = {
    "read": lambda w, h: w.http.get(f"/Procedure/{w.procedure_b['id']}", headers=h),
    "vread": lambda w, h: w.http.get(f"/Procedure/{w.procedure_b['id']}/_history/1", headers=h),
    "history": lambda w, h: w.http.get(f"/Procedure/{w.procedure_b['id']}/_history", headers=h),
    "search": lambda w, h: w.http.get(
        "/Procedure", params={"patient": f"Patient/{w.patient_b}"}, headers=h
    ),
    "count": lambda w, h: w.http.get(
        "/Procedure", params={"patient": f"Patient/{w.patient_b}", "_summary": "count"}, headers=h
    ),
    "create": lambda w, h: w.http.post("/Procedure", json=new_procedure(w), headers=h),
    "update": lambda w, h: w.http.put(
        f"/Procedure/{w.procedure_b['id']}", json=w.procedure_b, headers=h
    ),
    "delete": lambda w, h: w.http.delete(f"/Procedure/{throwaway(w)}", headers=h),
    "everything": lambda w, h: w.http.get(f"/Patient/{w.patient_b}/$everything", headers=h),
    "transaction": lambda w, h: w.http.post(
        "/",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": new_procedure(w), "request": {"method": "POST", "url": "Procedure"}}
            ],
        },
        headers=h,
    ),
    "read notice": lambda w, h: w.http.get(f"/Communication/{w.communication_b}", headers=h),
    "search notices": lambda w, h: w.http.get("/Communication", headers=h),
}
WHO = ("no token", "expired", "wrong scope", "other unit", "external", "right")
# What each caller gets; "absent" is 200 with total 0 for searches and 404 for the rest.
EXPECTED: dict[str, dict[str, int | str]] = {
    "no token": dict.fromkeys(INTERACTIONS, 401),
    "expired": dict.fromkeys(INTERACTIONS, 401),
    "wrong scope": dict.fromkeys(INTERACTIONS, 403),
    "other unit": {
        **dict.fromkeys(INTERACTIONS, "absent"),
        # Written into its own partition, about a patient it does not hold: refused exactly as
        # for a patient that does not exist (no consent of its own is in force).
        "create": 422,
        "transaction": 422,
    },
    "external": {
        **dict.fromkeys(INTERACTIONS, 403),  # only Communications addressed to it, and read only
        "read notice": "absent",  # the consent was revoked: nothing may reach it today
        "search notices": "absent",
    },
    "right": {
        **dict.fromkeys(INTERACTIONS, 200),
        "create": 201,
        "delete": 204,
    },
}


def check(answer: httpx.Response, expected: int | str) -> None:
    if expected == "absent":
        if (
            answer.request.method == "GET"
            and "/_history" not in answer.request.url.path
            and (answer.request.url.path.count("/") == 1)
        ):
            assert answer.status_code == 200, answer.text
            assert answer.json()["total"] == 0
            assert "entry" not in answer.json() or all(
                e["search"]["mode"] == "outcome" for e in answer.json()["entry"]
            )
        else:
            assert answer.status_code == 404, answer.text
            assert answer.json()["resourceType"] == "OperationOutcome"
        return
    assert answer.status_code == expected, answer.text
    if expected >= 400:  # type: ignore[operator]
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["diagnostics"]
        if expected == 401:
            assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("interaction", list(INTERACTIONS))
@pytest.mark.parametrize("who", WHO)
def test_authorization_matrix(world: World, who: str, interaction: str) -> None:
    expected = EXPECTED[who][interaction]
    answer = INTERACTIONS[interaction](world, world.headers(who))
    check(answer, expected)
    if expected in (401, 403, "absent") and answer.status_code == 200:
        # An absent answer discloses nothing of unit B: no resource of it among the entries
        # (the self link may repeat the caller's own query).
        assert world.patient_b not in json.dumps(answer.json().get("entry", []))


def test_another_units_data_does_not_leak_even_by_counts(world: World) -> None:
    a, b = world.headers("other unit"), world.headers("right")
    for kind in ("Patient", "Procedure", "CarePlan", "Consent", "EpisodeOfCare", "CareTeam"):
        seen_by_a = world.http.get(f"/{kind}", params={"_summary": "count"}, headers=a).json()
        seen_by_b = world.http.get(f"/{kind}", params={"_summary": "count"}, headers=b).json()
        everyone = world.http.get(
            f"/{kind}", params={"_summary": "count"}, headers=world.headers("platform")
        ).json()
        assert seen_by_a["total"] + seen_by_b["total"] == everyone["total"], kind
        assert min(seen_by_a["total"], seen_by_b["total"]) > 0, kind
    # Chained by B's patient's personnummer: A learns nothing, not even that one exists.
    chained = world.http.get(
        "/Procedure",
        params={"patient.identifier": "199103744521", "_summary": "count"},
        headers=a,
    )
    assert chained.json()["total"] == 0
    # Its _include of a patient stays home too.
    included = world.http.get(
        "/Procedure", params={"_include": "Procedure:patient"}, headers=a
    ).json()
    assert world.patient_b not in json.dumps(included)


def test_an_external_actor_reads_its_notices_only_while_a_consent_covers_them(
    world: World,
) -> None:
    fk = world.headers("external")
    assert world.http.get("/Communication", headers=fk).json()["total"] == 0
    consents = world.http.get("/Consent", headers=world.headers("right")).json()
    revoked = next(
        e["resource"] for e in consents["entry"] if e["resource"]["status"] == "inactive"
    )
    renewed = copy.deepcopy(revoked)
    for key in ("id", "meta"):
        renewed.pop(key)
    renewed["identifier"][0]["value"] = "SAM-0117-3"
    renewed["status"] = "active"
    renewed["dateTime"] = "2025-05-02"
    renewed["provision"]["period"] = {"start": "2025-03-12"}
    renewed["extension"] = [e for e in renewed["extension"] if "consent-history" not in e["url"]]
    given = world.http.post("/Consent", json=renewed, headers=world.headers("right"))
    assert given.status_code == 201, given.text
    found = world.http.get("/Communication", headers=fk).json()
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == world.communication_b
    read = world.http.get(f"/Communication/{world.communication_b}", headers=fk)
    assert read.status_code == 200
    # Revoked again (status inactive, period ended): the notice is out of reach at once.
    stored = given.json()
    stored["status"] = "inactive"
    stored["provision"]["period"]["end"] = "2025-06-01"
    revoked_again = world.http.put(
        f"/Consent/{stored['id']}", json=stored, headers=world.headers("right")
    )
    assert revoked_again.status_code == 200, revoked_again.text
    assert world.http.get("/Communication", headers=fk).json()["total"] == 0
    assert world.http.get(f"/Communication/{world.communication_b}", headers=fk).status_code == 404


def test_writes_carry_a_provenance_of_who_for_which_unit(world: World) -> None:
    created = world.http.post(
        "/Procedure", json=new_procedure(world), headers=world.headers("right")
    ).json()
    provenances = world.http.get(
        "/Provenance", params={"_count": "1000"}, headers=world.headers("right")
    ).json()
    target = f"Procedure/{created['id']}/_history/1"
    mine = [
        e["resource"]
        for e in provenances["entry"]
        if e["resource"]["target"][0]["reference"] == target
    ]
    assert len(mine) == 1
    author = mine[0]["agent"][0]
    assert author["who"]["identifier"]["value"] == STAFF_B
    assert author["onBehalfOf"]["identifier"]["value"] == UNIT_B
    assert mine[0]["activity"]["coding"][0]["code"] == "CREATE"
    # Unit A sees none of B's provenance.
    seen_by_a = world.http.get(
        "/Provenance", params={"_count": "1000"}, headers=world.headers("other unit")
    ).json()
    assert target not in json.dumps(seen_by_a)


def test_every_access_in_this_module_is_in_the_access_log(world: World) -> None:
    made = len(world.requests)  # the log search below is itself logged, after it answers
    log = world.http.get(
        "/AuditEvent", params={"_summary": "count"}, headers=world.headers("platform")
    ).json()
    assert log["total"] == made
    # B's patient: every access naming them is searchable by patient (and B sees its own).
    about_b = world.http.get(
        "/AuditEvent",
        params={"patient": f"Patient/{world.patient_b}", "date": "ge2020-01-01", "_count": "1000"},
        headers=world.headers("right"),
    ).json()
    assert about_b["total"] > 0
    for entry in about_b["entry"]:
        event = entry["resource"]
        assert event["resourceType"] == "AuditEvent"
        assert any(
            e.get("what", {}).get("reference") == f"Patient/{world.patient_b}"
            for e in event["entity"]
        )
    # Unit A does not read B's log.
    seen_by_a = world.http.get(
        "/AuditEvent",
        params={"patient": f"Patient/{world.patient_b}"},
        headers=world.headers("other unit"),
    ).json()
    assert all(UNIT_B not in json.dumps(e["resource"]) for e in seen_by_a.get("entry", []))
    # The log is append-only over HTTP.
    assert world.http.delete("/AuditEvent/x", headers=world.headers("platform")).status_code == 405
