"""The store as the worklist uses it: FHIR interactions through the router on the guarded store,
as the care unit (a token's ``care_unit`` would act the same way through the API).

So the worklist gets what every caller gets: validation, the unit's partition, a Provenance
per change and the access-log record of each write committed with it
(:class:`~reko_fhir.security.guard.GuardedRepository`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from reko_fhir.domain.identifiers import HsaId
from reko_fhir.mapping import worklist as wl
from reko_fhir.mapping.codings import PROFILE_WORKLIST_TASK
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.messages import FhirRequest, FhirResponse
from reko_fhir.rest.router import FhirRouter
from reko_fhir.security.audit import AccessRecord
from reko_fhir.security.guard import Caller, GuardedRepository, ScopeCheck
from reko_fhir.security.scopes import Scopes
from reko_fhir.security.tokens import Principal
from reko_fhir.store import FhirRepository, Partitions

Json = dict[str, Any]
CLIENT = "reko-fhir worklist"
SCOPES = "system/Task.cruds system/Patient.cruds system/Organization.cruds system/EpisodeOfCare.rs"
PAGE = 1000  # the router's largest _count


class UnitStore(FhirRepository, Protocol):
    """The raw store (SQL or memory): what a care unit's view is cut from."""

    def scoped(self, partitions: Partitions) -> FhirRepository: ...


def worklist_router(repository: FhirRepository) -> FhirRouter:
    """A router validating against the reko profiles (loading them takes a moment)."""
    from reko_fhir.validation.service import ValidationService, reko_definitions  # noqa: PLC0415

    return FhirRouter(repository, ValidationService(reko_definitions()))


class AsUnit:
    """FHIR interactions on ``repository`` as ``unit`` (its HSA-id is the acting subject)."""

    def __init__(
        self, repository: FhirRepository, unit: HsaId, router: FhirRouter | None = None
    ) -> None:
        self.store: UnitStore = repository  # type: ignore[assignment]
        self.unit = unit
        self.router = router or worklist_router(repository)
        self.principal = Principal(
            unit.value, Scopes.parse(SCOPES), unit.value, None, False, CLIENT
        )
        self.partitions = Partitions.of_unit(unit.value)

    def record(self, action: str, interaction: str, query: str | None = None) -> AccessRecord:
        return AccessRecord(
            action=action,
            interaction=interaction,
            outcome=200,
            agent=self.principal.subject,
            unit=self.unit.value,
            client_id=CLIENT,
            source_address=None,
            patients=(),
            entities=(),
            query=query,
            recorded=datetime.now(UTC),
        )

    async def handle(
        self,
        request: FhirRequest,
        body: Json | None = None,
        *,
        action: str = "R",
        interaction: str = "search-type",
        allow: tuple[int, ...] = (),
    ) -> FhirResponse:
        """The router's answer; OperationOutcomeError for a refusal (it names the problem)."""
        record = self.record(action, interaction)
        guarded = GuardedRepository(
            self.store.scoped(self.partitions), Caller(self.principal, record, self.partitions)
        )
        answer = await self.router.handle(
            request, body, repository=guarded, permissions=ScopeCheck(self.principal)
        )
        if answer.status >= 400 and answer.status not in allow:
            issues = (answer.resource or {}).get("issue") or []
            text = "; ".join(str(i.get("diagnostics", "")) for i in issues) or "refused"
            message = f"{request.method} {request.path}: {answer.status} {text}"
            raise OperationOutcomeError([error(IssueCode.PROCESSING, message, None)])
        return answer

    async def search(self, kind: str, query: tuple[tuple[str, str], ...]) -> list[Json]:
        """Every match (page after page)."""
        found: list[Json] = []
        while True:
            paging = (("_count", str(PAGE)), ("_offset", str(len(found))), ("_total", "none"))
            answer = await self.handle(FhirRequest("GET", f"/{kind}", (*query, *paging)))
            entries = (answer.resource or {}).get("entry") or []
            found += [
                e["resource"] for e in entries if e.get("search", {}).get("mode") != "include"
            ]
            if len(entries) < PAGE:
                return found

    async def find(self, kind: str, token: tuple[str, str]) -> str | None:
        """``Type/id`` of the unit's resource with this identifier, or None."""
        found = await self.search(kind, (("identifier", "|".join(token)),))
        return f"{kind}/{found[0]['id']}" if found else None

    async def ensure(self, resource: Json, token: tuple[str, str]) -> str:
        """``Type/id`` of the unit's resource with this identifier, created when missing
        (a conditional create, https://hl7.org/fhir/R4/http.html#ccreate)."""
        kind = str(resource["resourceType"])
        headers = {"if-none-exist": f"identifier={'|'.join(token)}"}
        request = FhirRequest("POST", f"/{kind}", headers=headers)
        answer = await self.handle(request, resource, action="C", interaction="create")
        return f"{kind}/{(answer.resource or {})['id']}"

    async def put_task(
        self, value: str, task: Json, *, version: str | None = None, task_id: str | None = None
    ) -> Json | None:
        """Store the Task with this worklist identifier: a conditional update on it
        (https://hl7.org/fhir/R4/http.html#cond-update), or with ``task_id`` and ``version``
        an update of that version only (``If-Match``; None when it changed meanwhile)."""
        body = {k: v for k, v in task.items() if k not in ("id", "meta")}
        body["meta"] = {"profile": [PROFILE_WORKLIST_TASK]}
        if task_id is None or version is None:
            query = (("identifier", wl.identifier_token(value)),)
            request = FhirRequest("PUT", "/Task", query)
        else:
            body["id"] = task_id
            headers = {"if-match": f'W/"{version}"'}
            request = FhirRequest("PUT", f"/Task/{task_id}", headers=headers)
        answer = await self.handle(request, body, action="U", interaction="update", allow=(412,))
        return None if answer.status == 412 else answer.resource or {}

    async def tasks(self, owner: str) -> list[Json]:
        """The unit's worklist Tasks."""
        return await self.search("Task", (("owner", owner), ("code", wl.TASK_TOKEN)))
