"""What a target receives it can resolve (issue 12, point 8). With the README's example
(``resource_types: [CarePlan, Procedure, Consent]``) the patient, the organisations and the
practitioner roles never reach the target: references to them go as logical references by
business identifier (https://hl7.org/fhir/R4/references.html#logical), never as our ids; a
reference between delivered types is the target's own id. ``meta.profile`` travels; the
attempt log records the status the target answered. The target is Medplum on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from reko_fhir.delivery.fhir import FhirTarget, identifier_token
from reko_fhir.mapping.references import display_only, literal_references
from reko_fhir.store import outbox_admin
from tests.delivery.serving import FHIR_JSON, case, serving
from tests.peers.servers import Peer

Json = dict[str, Any]
README_TYPES = ["CarePlan", "Procedure", "Consent"]


def references_in(node: Any) -> list[Json]:
    """Every Reference inside ``node``: a literal one (``reference`` a string) or a logical
    one (``identifier`` one Identifier, not a resource's list of them)."""
    found: list[Json] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str) or isinstance(node.get("identifier"), dict):
            found.append(node)
        for value in node.values():
            found += references_in(value)
    elif isinstance(node, list):
        for item in node:
            found += references_in(item)
    return found


async def test_a_target_gets_logical_references_to_what_it_never_receives(
    tmp_path: Path, medplum_peer: Peer
) -> None:
    target = {"name": "ehr", "base_url": medplum_peer.base_url, "resource_types": README_TYPES}
    bundle = case()
    sent = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] in README_TYPES]
    async with serving(tmp_path, [target]) as served:
        answer = await served.http.post("/", json=bundle, headers=FHIR_JSON)
        assert answer.status_code == 200, answer.text
        messages = await served.settled()
        assert {(m.resource_type, m.status) for m in messages} == {
            (kind, "delivered") for kind in README_TYPES
        }
        async with served.repository.transaction(writer=False) as conn:
            for message in messages:
                found = await outbox_admin.message(conn, message.id)
                assert found is not None
                # Medplum creates each on its conditional update: 201, in the log as such.
                assert [(a.result, a.status) for a in found[1]] == [("delivered", 201)]

    async with httpx.AsyncClient(timeout=10) as http:
        ehr = FhirTarget(http, medplum_peer.base_url, name="ehr")
        held: dict[str, Json] = {}
        for resource in sent:
            token = identifier_token(resource)
            assert token is not None
            (there,) = await ehr.pull(
                resource["resourceType"], since=None, params={"identifier": token}
            )
            held[f"{there['resourceType']}/{there['id']}"] = there
            assert there["meta"]["profile"] == resource["meta"]["profile"]

        logical: set[tuple[str, str]] = set()
        forward: list[Json] = []
        for there in held.values():
            for ref in references_in(there):
                if ref.get("reference", "").startswith("#"):
                    continue  # a contained resource: travels inside its container
                if "reference" in ref:  # a literal one: to what the target itself holds
                    assert ref["reference"] in held, (there["resourceType"], ref)
                elif ref["type"] in README_TYPES:
                    forward.append(ref)
                else:
                    logical.add((ref["type"], ref["identifier"]["value"]))
        # The plan names the Procedures that carried out its activities (outcomeReference)
        # and they name it (basedOn): of such a cycle, the plan goes first and names them by
        # identifier, as the worker does for any not yet delivered resource of the patient.
        plan = next(r for r in held.values() if r["resourceType"] == "CarePlan")
        outcomes = [o for a in plan["activity"] for o in a.get("outcomeReference", [])]
        assert forward == outcomes
        assert forward
        procedures = {
            r["identifier"][0]["value"] for r in held.values() if r["resourceType"] == "Procedure"
        }
        assert {ref["type"] for ref in forward} == {"Procedure"}
        assert {ref["identifier"]["value"] for ref in forward} <= procedures
        assert "reference" not in plan["author"]
        assert plan["author"]["identifier"]["system"] == "urn:oid:1.2.752.29.4.19"  # HSA-id
        assert {kind for kind, _ in logical} >= {"Patient", "Organization", "PractitionerRole"}
        assert ("Patient", "197804122385") in logical


def test_a_reference_with_nothing_to_name_it_by_keeps_only_its_display() -> None:
    resource = {
        "resourceType": "Procedure",
        "performer": [{"actor": {"reference": "Practitioner/x1", "display": "Dr A"}}],
        "subject": {"reference": "Patient/p1"},
    }
    stripped = display_only(resource, {"Practitioner/x1"})
    assert stripped["performer"][0]["actor"] == {"type": "Practitioner", "display": "Dr A"}
    assert literal_references(stripped) == {"Patient/p1"}
