"""Follow-ups through the router, on the memory repository: the activity search, and a performed
Procedure ``basedOn`` a plan completing the planned activity it carries out
(https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.basedOn)."""

from __future__ import annotations

from typing import Any

import pytest

from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import Partitions, Search
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.validation.service import ValidationService
from tests.followups_data import SOURCE, follow_up_plan, performed
from tests.rest.conftest import UNIT
from tests.rest.test_router_memory import case_a, router

__all__ = ["router"]  # the router suite's fixture (store and validation: conftest.py)

Json = dict[str, Any]


class Case:
    """Golden case a stored, and an active plan with follow-ups beside it."""

    def __init__(self, router: FhirRouter, store: MemoryRepository) -> None:
        self.router, self.store = router, store
        self.patient = self.staff = self.unit = self.plan = ""

    async def setup(self) -> Case:
        assert (await self.router.handle(FhirRequest("POST", "/"), case_a())).status == 200
        (patient,) = await self.store.search("Patient", Search())
        self.patient = f"Patient/{patient.id}"
        coordinator = await self.store.search(
            "PractitionerRole", Search.parse("identifier=SE2321000016-R3K7")
        )
        self.staff = f"PractitionerRole/{coordinator[0].id}"
        (unit,) = await self.store.search("Organization", Search.parse(f"identifier={UNIT}"))
        self.unit = f"Organization/{unit.id}"
        created = await self.post("CarePlan", follow_up_plan(self.patient, self.staff))
        assert created.status == 201, created.resource
        assert created.resource is not None
        self.plan = f"CarePlan/{created.resource['id']}"
        return self

    async def post(self, kind: str, resource: Json, if_none_exist: str | None = None) -> Any:
        headers = {"if-none-exist": if_none_exist} if if_none_exist else {}
        return await self.router.handle(FhirRequest("POST", f"/{kind}", headers=headers), resource)

    async def current_plan(self) -> Json:
        answer = await self.router.handle(FhirRequest("GET", f"/{self.plan}"))
        assert answer.resource is not None
        return answer.resource

    async def plan_versions(self) -> int:
        return len(await self.store.history("CarePlan", self.plan.split("/")[1]))

    def procedure(self, **options: Any) -> Json:
        return performed(self.patient, self.staff, self.unit, self.plan, **options)


@pytest.fixture
async def case(router: FhirRouter, store: MemoryRepository) -> Case:
    return await Case(router, store).setup()


async def found_plans(case: Case, query: str) -> list[str]:
    request = FhirRequest("GET", "/CarePlan", query=tuple(Search.parse(query).params))
    answer = await case.router.handle(request)
    assert answer.status == 200, answer.resource
    assert answer.resource is not None
    return [f"CarePlan/{e['resource']['id']}" for e in answer.resource.get("entry", [])]


async def test_the_activity_search_finds_the_plan_with_a_follow_up_due(case: Case) -> None:
    due = "activity-date=lt2026-02-10&activity-code=AW026&status=active"
    assert await found_plans(case, due) == [case.plan]
    assert (
        await found_plans(case, "activity-date=lt2026-02-01&activity-code=AW026&status=active")
        == []
    )
    assert await found_plans(case, "activity-code=GC001&status=active") == [case.plan]


async def test_a_performed_follow_up_completes_the_earliest_open_one(case: Case) -> None:
    answer = await case.post("Procedure", case.procedure())
    assert answer.status == 201, answer.resource
    procedure = f"Procedure/{answer.resource['id']}"
    plan = await case.current_plan()
    assert plan["meta"]["versionId"] == "2"
    march, february, gc001 = plan["activity"]
    assert february["outcomeReference"] == [{"reference": procedure}]
    assert february["detail"]["status"] == "completed"
    assert march["detail"]["status"] == "scheduled"
    assert "outcomeReference" not in march
    assert gc001["detail"]["status"] == "scheduled"
    # The new version of the plan still conforms to RekoCarePlan.
    checked = await case.router.handle(FhirRequest("POST", "/CarePlan/$validate"), plan)
    assert checked.resource is not None
    assert not [i for i in checked.resource["issue"] if i["severity"] in ("error", "fatal")]

    # A second performed follow-up takes the next one.
    second = await case.post("Procedure", case.procedure(record="J-FU-2"))
    assert second.status == 201
    march = (await case.current_plan())["activity"][0]
    assert march["outcomeReference"] == [{"reference": f"Procedure/{second.resource['id']}"}]
    assert march["detail"]["status"] == "completed"


async def test_sending_the_same_procedure_again_writes_no_new_plan_version(case: Case) -> None:
    condition = f"identifier={SOURCE}|J-FU-1"
    assert (await case.post("Procedure", case.procedure(), condition)).status == 201
    assert await case.plan_versions() == 2
    again = await case.post("Procedure", case.procedure(), condition)
    assert again.status == 200
    put = await case.router.handle(
        FhirRequest("PUT", "/Procedure", query=(("identifier", f"{SOURCE}|J-FU-1"),)),
        case.procedure(),
    )
    assert put.status == 200, put.resource
    assert await case.plan_versions() == 2
    assert len(await case.store.search("Procedure", Search.parse(condition))) == 1


async def test_a_gc001_completes_a_planned_gc001_of_its_part_only(case: Case) -> None:
    other = await case.post(
        "Procedure", case.procedure(code="GC001", record="J-G1", part="intern-samordning")
    )
    assert other.status == 201, other.resource
    assert await case.plan_versions() == 1  # no planned intern-samordning: nothing completed
    own = await case.post(
        "Procedure", case.procedure(code="GC001", record="J-G2", part="personligt-stod")
    )
    assert own.status == 201
    gc001 = (await case.current_plan())["activity"][2]
    assert gc001["detail"]["status"] == "completed"
    assert gc001["outcomeReference"] == [{"reference": f"Procedure/{own.resource['id']}"}]


async def test_a_procedure_not_completed_links_nothing(case: Case) -> None:
    procedure = {**case.procedure(), "status": "in-progress"}
    assert (await case.post("Procedure", procedure)).status == 201
    assert await case.plan_versions() == 1


async def test_an_explicit_outcome_reference_on_the_plan_is_the_activity_completed(
    case: Case,
) -> None:
    """R4 has no pointer from a Procedure to one activity; the plan's own outcomeReference is
    one, and the server completes that activity rather than the earliest."""
    answer = await case.post("Procedure", {**case.procedure(), "status": "in-progress"})
    procedure = f"Procedure/{answer.resource['id']}"
    plan = await case.current_plan()
    plan["activity"][0]["outcomeReference"] = [{"reference": procedure}]  # the March one
    assert (await case.router.handle(FhirRequest("PUT", f"/{case.plan}"), plan)).status == 200
    done = {**case.procedure(), "id": answer.resource["id"]}
    assert (await case.router.handle(FhirRequest("PUT", f"/{procedure}"), done)).status == 200
    march, february, _ = (await case.current_plan())["activity"]
    assert march["detail"]["status"] == "completed"
    assert february["detail"]["status"] == "scheduled"


async def other_unit(store: MemoryRepository, validation: ValidationService, plan: str) -> Case:
    """Unit VC02 with the same golden case stored in its own partition (its own Patient,
    consent and episode), whose Procedures name unit VC01's ``plan``."""
    own = "SE2321000016-VC02"
    scoped = store.scoped(Partitions.of_unit(own))
    other = Case(FhirRouter(scoped, validation), scoped)
    assert (await other.router.handle(FhirRequest("POST", "/"), case_a())).status == 200

    async def ours(kind: str, query: str) -> str:
        # The directory is read across units: B's own entry is the one in its partition.
        found = await scoped.search(kind, Search.parse(query))
        return f"{kind}/{next(s.id for s in found if s.partition == own)}"

    other.patient = await ours("Patient", "")
    other.staff = await ours("PractitionerRole", "identifier=SE2321000016-R3K7")
    other.unit, other.plan = await ours("Organization", f"identifier={UNIT}"), plan
    return other


async def test_another_units_plan_is_refused_at_based_on(
    case: Case, store: MemoryRepository, validation: ValidationService
) -> None:
    other = await other_unit(store, validation, case.plan)
    answer = await other.post("Procedure", other.procedure())
    assert answer.status == 422, answer.resource
    assert answer.resource is not None
    (issue,) = answer.resource["issue"]
    assert issue["expression"] == ["Procedure.basedOn[0]"]
    assert issue["diagnostics"] == f"{case.plan} is not known in this care unit"
    assert await case.plan_versions() == 1
    condition = Search.parse(f"identifier={SOURCE}|J-FU-1")
    assert await other.store.search("Procedure", condition) == []  # nothing of it stored
    # Without basedOn the same Procedure is B's to store: only the link was refused.
    assert (await other.post("Procedure", {**other.procedure(), "basedOn": []})).status == 201


async def test_a_plan_of_another_patient_is_refused(case: Case) -> None:
    procedure = case.procedure()
    procedure["basedOn"] = [{"reference": "CarePlan/never-was"}, {"reference": case.plan}]
    answer = await case.post("Procedure", procedure)
    assert answer.status == 422
    assert answer.resource["issue"][0]["expression"] == ["Procedure.basedOn[0]"]
    procedure = case.procedure()
    # The plan names the case's patient; a Procedure of another patient may not be based on it.
    procedure["subject"] = {"reference": "Patient/someone-else"}
    answer = await case.post("Procedure", procedure)
    assert answer.status == 422
    assert await case.plan_versions() == 1


async def test_a_plan_and_its_performed_follow_up_in_one_transaction(
    router: FhirRouter, store: MemoryRepository
) -> None:
    case = await Case(router, store).setup()
    plan = follow_up_plan(case.patient, case.staff, record="PLAN-FU-2")
    procedure = performed(case.patient, case.staff, case.unit, "urn:uuid:plan-2", record="J-T1")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [  # the Procedure first: the link waits for every entry to be stored
            {
                "fullUrl": "urn:uuid:proc-1",
                "resource": procedure,
                "request": {"method": "PUT", "url": f"Procedure?identifier={SOURCE}|J-T1"},
            },
            {
                "fullUrl": "urn:uuid:plan-2",
                "resource": plan,
                "request": {"method": "PUT", "url": f"CarePlan?identifier={SOURCE}|PLAN-FU-2"},
            },
        ],
    }
    first = await router.handle(FhirRequest("POST", "/"), bundle)
    assert first.status == 200, first.resource
    stored_plan = first.resource["entry"][1]["fullUrl"]
    stored_procedure = first.resource["entry"][0]["fullUrl"]
    (written,) = await store.search("CarePlan", Search.parse(f"identifier={SOURCE}|PLAN-FU-2"))
    assert written.version == 1  # written linked: one version
    february = written.resource["activity"][1]
    assert february["outcomeReference"] == [{"reference": stored_procedure}]
    assert february["detail"]["status"] == "completed"
    assert f"CarePlan/{written.id}" == stored_plan

    again = await router.handle(FhirRequest("POST", "/"), bundle)
    assert again.status == 200
    assert {e["response"]["status"] for e in again.resource["entry"]} == {"200 OK"}
    assert len(await store.history("CarePlan", written.id)) == 1


async def test_a_transaction_based_on_another_units_plan_is_refused(
    case: Case, store: MemoryRepository, validation: ValidationService
) -> None:
    other = await other_unit(store, validation, case.plan)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": other.procedure(),
                "request": {"method": "POST", "url": "Procedure"},
            }
        ],
    }
    answer = await other.router.handle(FhirRequest("POST", "/"), bundle)
    assert answer.status == 422, answer.resource
    assert answer.resource["issue"][0]["expression"] == ["Bundle.entry[0].resource.basedOn[0]"]
    assert await case.plan_versions() == 1


async def test_a_malformed_plan_beside_its_procedure_is_refused_not_a_crash(
    router: FhirRouter, store: MemoryRepository
) -> None:
    """The plan of a transaction is linked before it is validated: a broken shape anywhere the
    link looks is the validator's 4xx, never a 500."""
    case = await Case(router, store).setup()
    plan = follow_up_plan(case.patient, case.staff, record="PLAN-BAD")
    plan["activity"] = [
        {"outcomeReference": {"reference": "x"}, "detail": {**plan["activity"][1]["detail"]}},
        {"detail": {**plan["activity"][0]["detail"], "scheduledPeriod": "2026-03-01"}},
        {"detail": {**plan["activity"][0]["detail"], "scheduledTiming": {"repeat": "daily"}}},
        "not an activity",
    ]
    procedure = performed(case.patient, case.staff, case.unit, "urn:uuid:bad", record="J-BAD")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:bad",
                "resource": plan,
                "request": {"method": "POST", "url": "CarePlan"},
            },
            {"resource": procedure, "request": {"method": "POST", "url": "Procedure"}},
        ],
    }
    answer = await router.handle(FhirRequest("POST", "/"), bundle)
    assert 400 <= answer.status < 500, answer.resource
    assert await store.search("CarePlan", Search.parse(f"identifier={SOURCE}|PLAN-BAD")) == []
