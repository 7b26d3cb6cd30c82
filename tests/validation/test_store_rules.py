"""The rules across resources against what the store holds (contract 2, rules 2 and 4): the
performer's PractitionerRole is read to know its care unit; the consent must be that unit's."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

from reko_fhir.store import Search, Stored
from reko_fhir.validation.store_rules import store_rule_issues
from tests.golden import FIXTURES

Json = dict[str, Any]
NOW = datetime(2025, 1, 1, tzinfo=UTC)


class Store:
    """A Reader over a few stored resources (``Type/id`` references)."""

    def __init__(self, resources: list[Json]) -> None:
        self.by_key = {f"{r['resourceType']}/{r['id']}": r for r in resources}

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        raise AssertionError("the rules read by patient and by id only")

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return Stored(self.by_key[f"{resource_type}/{resource_id}"], 1, NOW)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        return [
            Stored(r, 1, NOW)
            for r in self.by_key.values()
            if r["resourceType"] in types
            and patient in ((r.get("patient") or {}).get("reference"), None)
        ]

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        keys = [f"{resource_type}/{i}" for i in ids]
        return [Stored(self.by_key[k], 1, NOW) for k in keys if k in self.by_key]


def stored_case() -> tuple[list[Json], Json]:
    """Case b's units, roles, episode and consents with ``Type/id`` references, and a GC001."""
    bundle = json.loads(
        (FIXTURES / "valid" / "rule-coordination-needs-consent.json").read_text(encoding="utf-8")
    )
    ids = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/x{i}" for i, e in enumerate(bundle["entry"])
    }
    text = json.dumps(bundle)
    for url, key in ids.items():
        text = text.replace(url, key)
    entries = json.loads(text)["entry"]
    resources = []
    for i, entry in enumerate(entries):
        entry["resource"]["id"] = f"x{i}"
        resources.append(entry["resource"])
    procedure = copy.deepcopy(resources[13])  # GC001 on 2025-03-18 by the coordinator
    del procedure["id"]
    return resources[:12], procedure


def issues(resources: list[Json], procedure: Json) -> list[tuple[str, str | None]]:
    found = asyncio.run(store_rule_issues(Store(resources), procedure))
    return [(i.diagnostics, i.expression) for i in found if i.is_error]


def test_a_consent_of_the_performing_unit_covers_its_coordination() -> None:
    resources, procedure = stored_case()
    assert issues(resources, procedure) == []


def test_a_consent_given_to_another_unit_does_not_cover_this_units_coordination() -> None:
    resources, procedure = stored_case()
    other_unit = copy.deepcopy(resources[0])
    other_unit.update(id="u2", name="Vårdcentralen Öster")
    other_unit["identifier"][0]["value"] = "SE165565594230-1000"
    role = copy.deepcopy(resources[5])
    role.update(id="r2", organization={"reference": "Organization/u2"})
    role["identifier"][0]["value"] = "SE165565594230-R1"
    procedure["performer"] = [{"actor": {"reference": "PractitionerRole/r2"}}]
    assert issues([*resources, other_unit, role], procedure) == [
        (
            "coordination (GC001) on 2025-03-18 by Vårdcentralen Öster: the consent in force "
            "was given to another care unit",
            "Procedure.code",
        )
    ]


def test_a_plan_before_any_consent_is_an_error_in_the_store_too() -> None:
    resources, procedure = stored_case()
    procedure["code"]["coding"][0].update(code="DV077", display="plan")
    procedure.pop("category")
    procedure["performedDateTime"] = "2025-03-11T13:00:00+01:00"
    assert issues(resources, procedure) == [
        ("coordination (DV077) on 2025-03-11 has no consent in force", "Procedure.code")
    ]


def test_a_consent_naming_its_unit_by_identifier_only_covers_that_units_work() -> None:
    resources, procedure = stored_case()
    unit = resources[0]["identifier"][0]
    for consent in (r for r in resources if r["resourceType"] == "Consent"):
        consent["organization"] = [{"identifier": dict(unit)}]  # a logical reference
    assert issues(resources, procedure) == []
    for consent in (r for r in resources if r["resourceType"] == "Consent"):
        consent["organization"][0]["identifier"]["value"] = "SE165565594230-1000"
    assert [d for d, _ in issues(resources, procedure)] == [
        "coordination (GC001) on 2025-03-18 by Psykiatrimottagning Söder: the consent in force "
        "was given to another care unit"
    ]
