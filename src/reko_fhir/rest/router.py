"""The FHIR router: a request and a repository in, a status and a resource out.

Interactions (https://hl7.org/fhir/R4/http.html): capabilities, create (``If-None-Exist``),
read, vread, update (``If-Match``), conditional update, delete, history, search and
``$validate``. Every write is validated first (profiles, Swedish checks, and the consent rules
against what the store holds); a failing one is 422 and nothing is stored. Every failure is
an OperationOutcome.

The router holds no access logic: it is handed a repository per request (for an HTTP request,
:class:`reko_fhir.security.guard.GuardedRepository`, which sees only what the caller may) and
makes one check itself, whether the caller's scopes allow the interaction (:class:`Permissions`).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Any

from reko_fhir.mapping.references import literal_references
from reko_fhir.outcomes import (
    Issue,
    IssueCode,
    OperationOutcomeError,
    error,
    information,
    outcome_json,
    warning,
)
from reko_fhir.rest.access import ALLOW_ALL, AccessLogReader, Permissions
from reko_fhir.rest.access_log import read_access_log
from reko_fhir.rest.capabilities import capability_statement
from reko_fhir.rest.followups import link_performed
from reko_fhir.rest.history import since_filter
from reko_fhir.rest.inputs import check_request, shown
from reko_fhir.rest.measure import measure_request
from reko_fhir.rest.messages import FhirRequest, FhirResponse
from reko_fhir.rest.negotiation import check_tree
from reko_fhir.rest.paging import page_links
from reko_fhir.rest.searching import search_request
from reko_fhir.rest.searchparams import (
    READ_ONLY,
    RESOURCE_TYPES,
    includes_of,
    interactions,
    operations,
    patient_element,
)
from reko_fhir.rest.transaction import BundleProcessor
from reko_fhir.store import MATCH_LIMIT, FhirRepository, FhirSession, Search, Stored, not_found
from reko_fhir.validation.service import ValidationService
from reko_fhir.validation.store_rules import store_rule_issues

Json = dict[str, Any]
# What $everything gathers beside the Patient: the case, and the early-identification worklist's
# Task that led to it (Task.for names the patient).
CASE_TYPES = (
    "EpisodeOfCare",
    "CareTeam",
    "Consent",
    "CarePlan",
    "Procedure",
    "Communication",
    "Task",
)


class FhirRouter:
    def __init__(self, repository: FhirRepository, validation: ValidationService) -> None:
        self.default_repository = repository  # for callers inside the process (pull, tests)
        self.validation = validation

    async def handle(
        self,
        request: FhirRequest,
        body: Json | None = None,
        *,
        repository: FhirRepository | None = None,
        permissions: Permissions = ALLOW_ALL,
        access_log: AccessLogReader | None = None,
        body_checked: bool = False,
    ) -> FhirResponse:
        """Answer ``request``; ``body`` is its resource when the caller has already read it.

        ``repository`` is the store as the caller may see it, ``permissions`` what its scopes
        allow, ``access_log`` the part of the access log it may read. ``body_checked``: the
        body went through :func:`reko_fhir.rest.negotiation.read_body` (HTTP), which checks
        its strings as :func:`~reko_fhir.rest.negotiation.check_tree` does; else it is checked
        here."""
        handler = _Handler(
            self.validation, repository or self.default_repository, permissions, access_log
        )
        try:
            answer = await handler.dispatch(request, body, body_checked=body_checked)
        except OperationOutcomeError as failure:
            return FhirResponse(failure.status, outcome_json(failure.issues))
        return _prefer_return(request, answer)


class _Handler:
    """One request's interactions on its caller's repository."""

    def __init__(
        self,
        validation: ValidationService,
        repository: FhirRepository,
        permissions: Permissions,
        access_log: AccessLogReader | None,
    ) -> None:
        self.validation = validation
        self.repository = repository
        self.permissions = permissions
        self.access_log = access_log
        self.base = ""  # the request's base URL, set by dispatch

    async def dispatch(
        self, request: FhirRequest, body: Json | None, *, body_checked: bool = False
    ) -> FhirResponse:
        access = self.permissions
        check_request(request)
        if body is not None and not body_checked:  # bodies from inside the process (pull)
            check_tree(body)
        parts = [p for p in request.path.strip("/").split("/") if p]
        method = request.method.upper()
        if method not in ("GET", "POST", "PUT", "DELETE"):  # PATCH, HEAD, OPTIONS…
            raise _not_allowed(f"{shown(method)} is not an interaction here (GET POST PUT DELETE)")
        self.base = request.base
        if parts == ["metadata"] and method == "GET":
            return FhirResponse(200, capability_statement(request.base))
        if not parts and method == "POST":
            return FhirResponse(200, await self._bundle(_need(body)))
        if parts == ["_history"] and method == "GET":
            return FhirResponse(200, await self._history_system(request))
        if parts and parts[0] == "AuditEvent":
            access.allow("AuditEvent", "read" if parts[1:] else "search-type")
            if self.access_log is None:
                raise not_found("AuditEvent", "/".join(parts[1:]) or "(search)")
            return await read_access_log(self.access_log, parts[1:], request)
        if parts and parts[0] == "Measure":
            return await measure_request(self.repository, access, parts[1:], request, body)
        if not parts or parts[0] not in RESOURCE_TYPES:
            kind = parts[0] if parts else "(none)"
            raise OperationOutcomeError(
                [error(IssueCode.NOT_SUPPORTED, f"'{kind}' is not served here", None)], status=404
            )
        kind, rest = parts[0], parts[1:]
        if method != "GET" and kind in READ_ONLY:
            raise _not_allowed(f"{kind} is read-only here")
        if rest and rest[-1] == "$validate" and method == "POST":
            self._allow(kind, "validate")
            return await self._validate(kind, _need(body), request.param("profile"))
        if method == "GET":
            return await self._get(kind, rest, request)
        if method == "POST" and not rest:
            self._allow(kind, "create")
            return await self._create(kind, _need(body), request.header("if-none-exist"))
        if method == "PUT":
            self._allow(kind, "update")
            return await self._update(kind, rest, _need(body), request)
        if method == "DELETE" and len(rest) == 1:
            self._allow(kind, "delete")
            return await self._delete(kind, rest[0])
        raise _not_allowed(f"{method} /{request.path.strip('/')} is not an interaction here")

    def _allow(self, kind: str, interaction: str) -> None:
        """Served here (the tables the CapabilityStatement is made of), then allowed by the
        caller's scopes."""
        if interaction not in interactions(kind) and interaction not in operations(kind):
            raise _not_allowed(f"{interaction} is not an interaction on {kind} here")
        self.permissions.allow(kind, interaction)

    async def _history_system(self, request: FhirRequest) -> Json:
        """``GET /_history`` (https://hl7.org/fhir/R4/http.html#history): every version of
        every type the caller's scopes let it read the history of, newest first."""
        since = since_filter(request)
        found: list[Stored] = []
        for kind in sorted(RESOURCE_TYPES):
            if "history-type" not in interactions(kind):
                continue
            try:
                self.permissions.allow(kind, "history-type")
            except OperationOutcomeError:
                continue  # a type the scopes do not reach is left out, not refused
            found += [s for s in await self.repository.history(kind) if since(s)]
        found.sort(key=lambda s: s.last_updated, reverse=True)
        return _bundle("history", found, base=self.base)

    async def _bundle(self, bundle: Json) -> Json:
        kind = bundle.get("type") if bundle.get("resourceType") == "Bundle" else None
        processor = BundleProcessor(self.repository, self.validation, self.permissions)
        if kind in ("transaction", "batch"):
            answer = await (processor.transaction if kind == "transaction" else processor.batch)(
                bundle
            )
            for entry in answer.get("entry", []):
                if isinstance(entry.get("fullUrl"), str):
                    entry["fullUrl"] = _full_url(self.base, entry["fullUrl"])
            return answer
        message = "POST / takes a Bundle of type transaction or batch"
        raise OperationOutcomeError([error(IssueCode.INVALID, message, "Bundle.type")], status=400)

    async def _get(self, kind: str, rest: list[str], request: FhirRequest) -> FhirResponse:
        if not rest:
            self._allow(kind, "search-type")
            return FhirResponse(200, await self._search(kind, request))
        if rest == ["_history"]:
            self._allow(kind, "history-type")
            since = since_filter(request)
            found = [s for s in await self.repository.history(kind) if since(s)]
            return FhirResponse(200, _bundle("history", found, base=self.base))
        if len(rest) == 2 and rest[1] == "$everything":
            self._allow(kind, "everything")
            await self.repository.read(kind, rest[0])
            return FhirResponse(200, await self._everything(rest[0]))
        interaction = {1: "read", 2: "history-instance", 3: "vread"}.get(len(rest))
        if interaction is None or (len(rest) > 1 and rest[1] != "_history"):
            raise _not_allowed(f"GET /{kind}/{'/'.join(rest)} is not an interaction here")
        self._allow(kind, interaction)
        if len(rest) == 1:
            return _resource_response(200, await self.repository.read(kind, rest[0]))
        await _current_or_deleted(self.repository, kind, rest[0])
        if len(rest) == 2:
            since = since_filter(request)
            found = [s for s in await self.repository.history(kind, rest[0]) if since(s)]
            return FhirResponse(200, _bundle("history", found, base=self.base))
        if rest[2].isdigit():
            return _resource_response(200, await self.repository.vread(kind, rest[0], int(rest[2])))
        raise _not_allowed(f"GET /{kind}/{'/'.join(rest)} is not an interaction here")

    async def _delete(self, kind: str, resource_id: str) -> FhirResponse:
        async def delete(unit: FhirSession) -> int | None:
            try:
                await unit.read(kind, resource_id)
            except OperationOutcomeError as failure:
                if failure.status == 410:
                    return None  # deleted already: deleting again changes nothing
                raise
            version = await unit.delete(kind, resource_id)
            if version is None:
                # Read but not deleted: another unit's directory entry (Organization,
                # PractitionerRole), which every unit reads but only its own deletes. It
                # answers as a missing one, not 204 for a delete that did not happen.
                raise not_found(kind, resource_id)
            return version

        version = await self.repository.in_unit(delete)
        return FhirResponse(204, None, {"ETag": f'W/"{version}"'} if version else {})

    async def _search(self, kind: str, request: FhirRequest) -> Json:
        """A searchset page with self/next/previous links (https://hl7.org/fhir/R4/search.html);
        which parameters apply and how is :func:`reko_fhir.rest.searchparams.search_request`'s."""
        asked = search_request(kind, request)
        search = Search(asked.params, asked.count, asked.offset, asked.sort)
        page: list[Stored]
        total: int | None
        if asked.summary_count:
            total = await self.repository.total(kind, search)
            return {"resourceType": "Bundle", "type": "searchset", "total": total}
        page, total = await self.repository.page(kind, search, total=asked.total)
        bundle = _bundle("searchset", page, total, base=self.base)
        included = await self._includes(kind, page, asked.includes)
        if included:
            bundle.setdefault("entry", []).extend(
                {"fullUrl": self._url(r), "resource": r, "search": {"mode": "include"}}
                for r in included
            )
        bundle["link"] = page_links(
            kind, asked.applied, asked.offset, asked.count, total, shown=len(page), base=self.base
        )
        if asked.ignored:
            names = ", ".join(asked.ignored)
            note = outcome_json(
                [warning(IssueCode.NOT_SUPPORTED, f"ignored search parameters: {names}", None)]
            )
            bundle.setdefault("entry", []).append({"resource": note, "search": {"mode": "outcome"}})
        return bundle

    def _url(self, resource: Json) -> str:
        return _full_url(self.base, f"{resource['resourceType']}/{resource['id']}")

    async def _includes(
        self, kind: str, page: list[Stored], includes: tuple[str, ...]
    ) -> list[Json]:
        """``_include=Procedure:patient`` (or ``:subject``): the referenced Patients, once each."""
        elements = set()
        for value in includes:
            if value not in includes_of(kind):
                message = (
                    f"_include={value} is not supported (use {' or '.join(includes_of(kind))})"
                )
                raise OperationOutcomeError(
                    [error(IssueCode.NOT_SUPPORTED, message, "_include")], status=400
                )
            elements.add(patient_element(kind) or "subject")
        targets = sorted(
            {
                ref
                for stored in page
                for element in elements
                if isinstance(ref := (stored.resource.get(element) or {}).get("reference"), str)
                and ref.count("/") == 1
            }
        )
        return await self._read_all(targets)

    async def _read_all(self, references: list[str]) -> list[Json]:
        found = []
        for ref in references:
            target_type, target_id = ref.split("/")
            try:
                found.append((await self.repository.read(target_type, target_id)).resource)
            except OperationOutcomeError:
                continue  # a dangling, deleted or unseen target is left out, not an error
        return found

    async def _everything(self, patient_id: str) -> Json:
        """The patient's coordination case: the Patient, every case resource naming them, and the
        organisations and staff those refer to (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
        patient = await self.repository.read("Patient", patient_id)
        found: list[Stored] = [patient]
        for case_type in CASE_TYPES:
            # ``patient`` searches each type's own element (Task.for, Procedure.subject, …).
            search = Search((("patient", f"Patient/{patient_id}"),), MATCH_LIMIT)
            found += await self.repository.search(case_type, search)
        seen = {f"{s.resource['resourceType']}/{s.id}" for s in found}
        referenced = sorted(
            {
                ref
                for s in found
                for ref in literal_references(s.resource)
                if ref.split("/")[0] in ("Organization", "PractitionerRole") and ref not in seen
            }
        )
        bundle = _bundle("searchset", found, len(found), base=self.base)
        extra = await self._read_all(referenced)
        bundle.setdefault("entry", []).extend(
            {"fullUrl": self._url(r), "resource": r, "search": {"mode": "include"}} for r in extra
        )
        return bundle

    async def _create(self, kind: str, resource: Json, if_none_exist: str | None) -> FhirResponse:
        _same_type(kind, resource)
        issues = self.validation.validate(resource)
        condition = Search.parse(if_none_exist) if if_none_exist else None
        without_id = {k: v for k, v in resource.items() if k != "id"}

        async def create(unit: FhirSession) -> Stored:
            # The rules read the store on the writing transaction: what they saw still holds.
            _refuse_errors(issues + await store_rule_issues(unit, resource))
            stored = await unit.create(without_id, condition=condition)
            await link_performed(unit, stored.resource)  # a performed follow-up completes it
            return stored

        stored = await self.repository.in_unit(create)
        return _resource_response(201 if stored.created else 200, stored)

    async def _update(
        self, kind: str, rest: list[str], resource: Json, request: FhirRequest
    ) -> FhirResponse:
        _same_type(kind, resource)
        if rest and resource.get("id") != rest[0]:
            message = f"the resource's id must be {rest[0]}, as in the URL"
            raise OperationOutcomeError(
                [error(IssueCode.INVALID, message, f"{kind}.id")], status=400
            )
        if not rest and not request.query:
            raise _not_allowed("a conditional update needs search parameters")
        issues = self.validation.validate(resource)
        if_match = _if_match(request.header("if-match")) if rest else None
        condition = None if rest else Search(tuple(request.query))  # PUT /CarePlan?identifier=…

        async def update(unit: FhirSession) -> Stored:
            if condition is None:  # a missing resource answers 404 before any rule is checked
                await _current_or_deleted(unit, kind, rest[0])
            _refuse_errors(issues + await store_rule_issues(unit, resource))
            if condition is None:
                stored = await unit.update(resource, if_match=if_match)
            else:
                match = await unit.one_match(kind, condition)
                stored = await unit.update_match(resource, condition, match)
            await link_performed(unit, stored.resource)
            return stored

        stored = await self.repository.in_unit(update)
        return _resource_response(201 if stored.created else 200, stored)

    async def _validate(self, kind: str, resource: Json, profile: str | None) -> FhirResponse:
        _same_type(kind, resource)
        issues = self.validation.validate(resource, profile) + await store_rule_issues(
            self.repository, resource
        )
        return FhirResponse(200, outcome_json(issues))


async def _current_or_deleted(
    reader: FhirRepository | FhirSession, kind: str, resource_id: str
) -> Stored | None:
    """The current resource (None: deleted); 404 when the caller's repository has none
    (another unit's resource is none)."""
    try:
        return await reader.read(kind, resource_id)
    except OperationOutcomeError as failure:
        if failure.status != 410:
            raise
        return None


def _prefer_return(request: FhirRequest, answer: FhirResponse) -> FhirResponse:
    """``Prefer: return=minimal|representation|OperationOutcome`` on create and update
    (https://hl7.org/fhir/R4/http.html#ops); representation is the default."""
    prefer = request.header("prefer") or ""
    written = request.method.upper() in ("POST", "PUT") and answer.status in (200, 201)
    if not written or answer.resource is None or answer.resource.get("resourceType") == "Bundle":
        return answer
    if "return=minimal" in prefer:
        return FhirResponse(answer.status, None, answer.headers)
    if "return=OperationOutcome" in prefer:
        kind, rid = answer.resource["resourceType"], answer.resource.get("id")
        note = outcome_json([information(IssueCode.INFORMATIONAL, f"{kind}/{rid} stored", None)])
        return FhirResponse(answer.status, note, answer.headers)
    return answer


def _need(body: Json | None) -> Json:
    if body is None:
        raise OperationOutcomeError(
            [error(IssueCode.STRUCTURE, "the request has no resource", None)], status=400
        )
    return body


def _same_type(kind: str, resource: Json) -> None:
    if resource.get("resourceType") != kind:
        message = f"a {resource.get('resourceType')} was sent to /{kind}"
        raise OperationOutcomeError([error(IssueCode.INVALID, message, "resourceType")], status=400)


def _if_match(header: str | None) -> int | None:
    if header is None:
        return None
    digits = header.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise OperationOutcomeError(
            [error(IssueCode.INVALID, f"If-Match '{header}' is not W/\"<version>\"", None)],
            status=400,
        )
    return int(digits)


def _not_allowed(message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, None)], status=405)


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _resource_response(status: int, stored: Stored) -> FhirResponse:
    kind = stored.resource["resourceType"]
    headers = {
        "ETag": f'W/"{stored.version}"',
        "Last-Modified": _http_date(stored.last_updated),
        "Location": f"{kind}/{stored.id}/_history/{stored.version}",
    }
    return FhirResponse(status, stored.resource, headers)


def _full_url(base: str, relative: str) -> str:
    """``Type/id`` absolute from the base URL (https://hl7.org/fhir/R4/bundle.html#fullUrl)."""
    return f"{base}/{relative}" if base else relative


def _bundle(kind: str, found: list[Stored], total: int | None = None, *, base: str = "") -> Json:
    """A searchset or history Bundle (https://hl7.org/fhir/R4/bundle.html); a searchset's
    ``total`` only when it is known; ``fullUrl``s absolute from ``base`` when given."""
    bundle: Json = {"resourceType": "Bundle", "type": kind}
    if kind == "searchset" and total is not None:
        bundle["total"] = total
    entries = []
    for stored in found:
        url = f"{stored.resource['resourceType']}/{stored.id}"
        entry: Json = {"fullUrl": _full_url(base, url), "resource": stored.resource}
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        else:  # history entries say how each version came to be
            entry["request"] = {"method": "POST" if stored.version == 1 else "PUT", "url": url}
            entry["response"] = {"status": "201" if stored.version == 1 else "200"}
        entries.append(entry)
    if entries:
        bundle["entry"] = entries
    return bundle


def _refuse_errors(issues: list[Issue]) -> None:
    """Validation on every write: any error → 422 with all issues; nothing is stored."""
    if any(i.is_error for i in issues):
        raise OperationOutcomeError([i for i in issues if i.is_error], status=422)
