"""Follow-ups on a real ``reko-fhir serve`` (SQLite) with the real ``reko-fhir follow-ups``
command beside it: a plan's AW026 follow-up is found by ``activity-date``, listed as due, and
once the performed Procedure ``basedOn`` the plan is stored it is completed (outcomeReference)
and gone from the list; another care unit can neither see it nor link to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.followups_data import SOURCE, follow_up_plan, performed
from tests.isolation.conftest import HSA, STAFF_A, UNIT_A, UNIT_B, Server, start

Json = dict[str, Any]
CASE = "a-primary-care"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with start("sqlite", tmp_path_factory.mktemp("followups")) as running:
        running.post_case("A", CASE, UNIT_A)
        running.post_case("B", CASE, UNIT_B)
        yield running


def ids(server: Server, who: str, unit: str, staff: str) -> tuple[str, str, str]:
    """The unit's Patient, coordinator (PractitionerRole) and Organization references."""
    (patient,) = server.get(who, "/Patient").json()["entry"]
    orgs = server.get(who, "/Organization", params={"identifier": f"{HSA}|{unit}"}).json()
    (org,) = orgs["entry"]
    organization = f"Organization/{org['resource']['id']}"
    roles = server.get(who, "/PractitionerRole", params={"identifier": f"{HSA}|{staff}"}).json()
    role = next(
        e["resource"]["id"]
        for e in roles["entry"]
        if e["resource"]["organization"]["reference"] == organization
    )
    return f"Patient/{patient['resource']['id']}", f"PractitionerRole/{role}", organization


def follow_ups(server: Server, unit: str, due_before: str, form: str = "json") -> Any:
    command = ["follow-ups", "--unit", unit, "--due-before", due_before, "--format", form]
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", *command],
        env={**os.environ, "REKO_DATA_DIR": str(server.service.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if form == "json" else done.stdout


def test_a_follow_up_from_plan_to_performed(server: Server) -> None:
    patient, staff, unit = ids(server, "A", UNIT_A, STAFF_A)
    created = server.request("A", "POST", "/CarePlan", follow_up_plan(patient, staff))
    assert created.status_code == 201, created.text
    plan = f"CarePlan/{created.json()['id']}"

    # The FHIR search: A's active plan with an AW026 scheduled before 10 February.
    due = {"activity-date": "lt2026-02-10", "activity-code": "AW026", "status": "active"}
    found = server.get("A", "/CarePlan", params=due).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [plan.split("/")[1]]
    assert server.get("B", "/CarePlan", params=due).json().get("entry", []) == []

    # The command lists it as due (the follow-up of 1 February; not that of 1 March).
    (row,) = follow_ups(server, UNIT_A, "2026-02-10")
    assert row["due"] == "2026-02-01"
    assert row["code"] == "AW026"
    assert row["careplan"] == plan
    assert row["activity"] == 1
    assert row["overdue"] is True
    assert row["patient"] == "197804122385"
    assert [r["code"] for r in follow_ups(server, UNIT_A, "2026-03-02")] == [
        "AW026",
        "GC001",
        "AW026",
    ]
    assert follow_ups(server, UNIT_B, "2026-03-02") == []  # B's own data only
    table = follow_ups(server, UNIT_A, "2026-02-10", "table")
    assert "2026-02-01  yes" in table
    assert table.rstrip().endswith("1 follow-up(s) due")
    # The command's read is in the unit's access log, with the patient it showed.
    events = server.get("A", "/AuditEvent", params={"patient": patient}).json()["entry"]
    assert any(
        agent["who"].get("identifier", {}).get("value") == "reko-fhir follow-ups"
        for event in events
        for agent in event["resource"]["agent"]
    )

    # B cannot link its Procedure to A's plan, and nothing of A's changes.
    b_patient, b_staff, b_unit = ids(server, "B", UNIT_B, STAFF_A)  # the same case at B
    refused = server.request(
        "B", "POST", "/Procedure", performed(b_patient, b_staff, b_unit, plan, record="J-B")
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Procedure.basedOn[0]"]
    assert server.get("A", f"/{plan}").json()["meta"]["versionId"] == "1"

    # A performs it: the plan's follow-up is completed, and it leaves the list.
    procedure = performed(patient, staff, unit, plan)
    condition = {"If-None-Exist": f"identifier={SOURCE}|J-FU-1"}
    stored = server.request("A", "POST", "/Procedure", procedure, headers=condition)
    assert stored.status_code == 201, stored.text
    current = server.get("A", f"/{plan}").json()
    assert current["meta"]["versionId"] == "2"
    activity = current["activity"][1]
    assert activity["detail"]["status"] == "completed"
    assert activity["outcomeReference"] == [{"reference": f"Procedure/{stored.json()['id']}"}]
    assert follow_ups(server, UNIT_A, "2026-02-10") == []
    # The plan's new version has its Provenance, as every write has.
    provenances = server.get("A", "/Provenance", params={"_count": "500"}).json()["entry"]
    targets = {t["reference"] for e in provenances for t in e["resource"]["target"]}
    assert f"{plan}/_history/2" in targets

    # Sent again, nothing changes.
    again = server.request("A", "POST", "/Procedure", procedure, headers=condition)
    assert again.status_code == 200, again.text
    assert server.get("A", f"/{plan}").json()["meta"]["versionId"] == "2"
