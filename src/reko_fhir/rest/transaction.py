"""Transaction and batch Bundles (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is atomic: every entry is resolved (conditions matched, new ids assigned),
``urn:uuid:`` references are rewritten to the ids, every resource is validated — the consent
rules against the Bundle and the store together — and all writes happen in one unit of work;
any failure leaves the store as it was. A batch runs each entry on its own.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from reko_fhir.outcomes import Issue, IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.rest.access import ALLOW_ALL, Permissions
from reko_fhir.rest.capabilities import WRITABLE
from reko_fhir.rest.followups import link_in_bundle, link_performed
from reko_fhir.rest.inputs import check_entry
from reko_fhir.store import FhirRepository, FhirSession, Search, Stored
from reko_fhir.validation.case_rules import BundleResolver, reference_issues
from reko_fhir.validation.service import ValidationService
from reko_fhir.validation.store_rules import store_rule_issues

Json = dict[str, Any]


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    resource_type: str
    resource: Json | None
    resource_id: str | None = None
    condition: Search | None = None
    full_url: str | None = None


MAX_ENTRIES = 1000
"""Entries per Bundle: the consent rules of each entry read the others, so a Bundle costs the
square of its size; a larger one is refused (413) and should be sent in parts."""


def _check_size(bundle: Json) -> list[Any]:
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise _invalid("Bundle.entry", "Bundle.entry is a list")
    if len(raw_entries) > MAX_ENTRIES:
        message = f"a Bundle holds at most {MAX_ENTRIES} entries here, not {len(raw_entries)}"
        raise OperationOutcomeError(
            [error(IssueCode.TOO_COSTLY, message, "Bundle.entry")], status=413
        )
    return raw_entries


def _parse(bundle: Json) -> list[_Entry]:
    entries = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(_check_size(bundle)):
        where = f"Bundle.entry[{i}]"
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        if full_url is not None and not isinstance(full_url, str):
            # A number would be "rewritten" wherever that number stands in the Bundle's text.
            raise _invalid(f"{where}.fullUrl", "fullUrl is a uri: a JSON string")
        if isinstance(full_url, str):
            # bdl-7: one fullUrl names one resource, else a reference to it means either.
            if full_url in seen:
                message = f"bdl-7: the fullUrl is that of Bundle.entry[{seen[full_url]}] too"
                raise _invalid(f"{where}.fullUrl", message)
            seen[full_url] = i
        request = raw.get("request") if isinstance(raw, dict) else None
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise _invalid(f"{where}.request", "each entry has request.method and request.url")
        if_none_exist = request.get("ifNoneExist")
        # The same checks as the request sent alone: ids, conditions, no traversal.
        check_entry(
            str(request["url"]),
            str(if_none_exist) if if_none_exist else None,
            f"{where}.request",
        )
        method, url = str(request["method"]).upper(), str(request["url"]).lstrip("/")
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in WRITABLE or method not in ("POST", "PUT", "DELETE"):
            raise _invalid(f"{where}.request", f"{method} {url} is not an interaction here")
        resource = raw.get("resource")
        if method != "DELETE" and (
            not isinstance(resource, dict) or resource.get("resourceType") != parts[0]
        ):
            raise _invalid(f"{where}.resource", f"{method} {url} needs a {parts[0]} resource")
        condition = Search.parse(query) if query else None
        if method == "POST" and request.get("ifNoneExist"):
            condition = Search.parse(str(request["ifNoneExist"]))
        entry = _Entry(
            i,
            method,
            parts[0],
            resource,
            parts[1] if len(parts) > 1 else None,
            condition,
            full_url,
        )
        if method in ("PUT", "DELETE") and entry.resource_id is None and condition is None:
            raise _invalid(f"{where}.request.url", "PUT and DELETE name an id or a condition")
        entries.append(entry)
    return entries


def _invalid(expression: str, message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.INVALID, message, expression)], status=400)


def _rewrite(resource: Json, ids: dict[str, str]) -> Json:
    """Every reference to a Bundle fullUrl now names the stored resource (``Type/id``)."""
    text = json.dumps(resource)
    for full_url, ref in ids.items():
        text = text.replace(json.dumps(full_url), json.dumps(ref))
    rewritten: Json = json.loads(text)
    return rewritten


@dataclass(slots=True)
class _Resolved:
    """What each entry writes: its target id, the match its condition found, its resource
    (references rewritten), and the profile issues of that resource once checked."""

    targets: dict[int, str | None]
    matches: dict[int, Stored]
    resources: dict[int, Json]
    fresh: set[str]
    """``Type/id`` of the new ids drawn: nothing stored names them before the Bundle commits."""
    issues: dict[int, list[Issue]] = field(default_factory=dict)


async def _resolve(
    session: FhirSession, entries: list[_Entry], draft: _Resolved | None
) -> _Resolved:
    """Each entry's condition matched once, all in one query where they are tokens (the
    draft's matches kept where they are still current); a new resource gets the id ``draft``
    drew for it (so it comes out as the draft did), else a new one."""
    ids: dict[str, str] = {}
    targets: dict[int, str | None] = {}
    fresh: set[str] = set()
    conditional = [e for e in entries if e.condition is not None and e.method != "DELETE"]
    known = [draft.matches.get(e.index) for e in conditional] if draft is not None else []
    found = await session.one_match_each(
        [(e.resource_type, e.condition) for e in conditional if e.condition is not None], known
    )
    matches = {
        e.index: match for e, match in zip(conditional, found, strict=True) if match is not None
    }
    resolved = {e.index for e in conditional}
    for entry in entries:  # which resource does each entry write?
        target = entry.resource_id
        if entry.index in resolved:
            match = matches.get(entry.index)
            target = match.id if match else None
        if target is None and entry.method in ("POST", "PUT"):
            drawn = (
                None
                if draft is None or entry.index in draft.matches
                else draft.targets.get(entry.index)
            )
            target = drawn or str(uuid.uuid4())
            fresh.add(f"{entry.resource_type}/{target}")
        targets[entry.index] = target
        if entry.full_url and target:
            ids[entry.full_url] = f"{entry.resource_type}/{target}"
    if draft is not None and draft.targets == targets:
        # The draft's ids, so its resources (rewritten, linked, never changed since) are these.
        return _Resolved(targets, matches, draft.resources, fresh)
    resources = {
        e.index: {**_rewrite(e.resource, ids), "id": targets[e.index]}
        for e in entries
        if e.resource is not None
    }
    link_in_bundle(resources)  # a plan and its performed follow-ups in one Bundle
    return _Resolved(targets, matches, resources, fresh)


class _ReadOnce:
    """The store as the consent rules read it while a Bundle is validated: each read once.
    Nothing is written before validation ends, so a repeated read would find the same rows;
    and nothing is stored about a resource the Bundle creates (``fresh``: its new ids), so
    that is not read at all (a new patient's consents and episodes are the Bundle's own)."""

    def __init__(self, unit: FhirSession, fresh: set[str]) -> None:
        self.unit = unit
        self.fresh = fresh
        self._about: dict[tuple[str, tuple[str, ...]], list[Stored]] = {}
        self._current: dict[tuple[str, tuple[str, ...]], list[Stored]] = {}

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return await self.unit.search(resource_type, search)

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self.unit.read(resource_type, resource_id)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        if patient in self.fresh:
            return []
        key = (patient, types)
        if key not in self._about:
            self._about[key] = await self.unit.about_patient(patient, types)
        return self._about[key]

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        stored = [i for i in ids if f"{resource_type}/{i}" not in self.fresh]
        if not stored:
            return []
        key = (resource_type, tuple(stored))
        if key not in self._current:
            self._current[key] = await self.unit.read_current(resource_type, stored)
        return self._current[key]


class BundleProcessor:
    def __init__(
        self,
        repository: FhirRepository,
        validation: ValidationService,
        permissions: Permissions = ALLOW_ALL,
    ) -> None:
        self.repository = repository
        self.validation = validation
        self.permissions = permissions

    async def transaction(self, bundle: Json) -> Json:
        entries = _parse(bundle)
        for entry in entries:  # every entry's interaction must be allowed before anything runs
            interaction = {"POST": "create", "PUT": "update", "DELETE": "delete"}[entry.method]
            self.permissions.allow(entry.resource_type, interaction)
        draft = await self._draft(entries)
        results = await self.repository.in_unit(
            lambda unit: self._transaction(unit, entries, draft)
        )
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": results}

    async def _draft(self, entries: list[_Entry]) -> _Resolved | None:
        """The Bundle resolved on a snapshot and its resources' profiles checked, before the
        write lock: the unit resolves again and checks again only a resource that came out
        different (a condition that now matches otherwise). None when the snapshot fails:
        the unit then gives the answer, as it always did."""
        try:
            draft = await self.repository.in_snapshot(lambda view: _resolve(view, entries, None))
        except OperationOutcomeError:
            return None
        for entry in entries:
            resource = draft.resources.get(entry.index)
            if resource is not None:
                where = f"Bundle.entry[{entry.index}].resource"
                draft.issues[entry.index] = self.validation.validate(resource, None, where)
        return draft

    async def _transaction(
        self, unit: FhirSession, entries: list[_Entry], draft: _Resolved | None
    ) -> list[Json]:
        resolved = await _resolve(unit, entries, draft)
        targets, matches, resources = resolved.targets, resolved.matches, resolved.resources
        await self._validate(unit, entries, resolved, draft)
        results = []
        written: dict[int, Json] = {}
        for entry in entries:
            resource = resources.get(entry.index)
            match = matches.get(entry.index)
            if entry.condition is not None and match is None and entry.method != "DELETE":
                # Resolved to nothing above: unless an entry written since matches it, the
                # create need not look again (a query, and a read amid the writes).
                unit.still_unmatched(entry.resource_type, entry.condition)
            results.append(await self._write(unit, entry, targets[entry.index], resource, match))
            if entry.resource_type == "Procedure" and entry.index in resources:
                written[entry.index] = {**resources[entry.index], "id": targets[entry.index]}
        for index, procedure in written.items():  # once every entry is stored
            await link_performed(unit, procedure, f"Bundle.entry[{index}].resource")
        return results

    async def _validate(
        self,
        unit: FhirSession,
        entries: list[_Entry],
        resolved: _Resolved,
        draft: _Resolved | None,
    ) -> None:
        resources = resolved.resources
        context = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"{r['resourceType']}/{r.get('id')}", "resource": r}
                for r in resources.values()
            ],
        }
        issues: list[Issue] = []
        resolver = BundleResolver.of(context)
        written = list(resources.values())
        reads = _ReadOnce(unit, resolved.fresh)  # a case's Procedures read the same consents
        for entry in entries:
            resource = resources.get(entry.index)
            if resource is None:
                continue
            where = f"Bundle.entry[{entry.index}].resource"
            if draft is not None and draft.resources.get(entry.index) == resource:
                issues += draft.issues[entry.index]  # checked before the lock, the same
            else:
                issues += self.validation.validate(resource, None, where)
            issues += await store_rule_issues(reads, resource, written, where)
            issues += [
                i for i in reference_issues(resource, where, resolver) if "urn:" in i.diagnostics
            ]
        errors = [i for i in issues if i.is_error]
        if errors:
            raise OperationOutcomeError(errors, status=422)

    async def _write(
        self,
        unit: FhirSession,
        entry: _Entry,
        target: str | None,
        resource: Json | None,
        match: Stored | None,
    ) -> Json:
        if entry.method == "DELETE":
            if target is None and entry.condition is not None:
                match = await unit.one_match(entry.resource_type, entry.condition)
                target = match.id if match else None
            version = await unit.delete(entry.resource_type, target) if target else None
            return {"response": {"status": "204 No Content" if version else "404 Not Found"}}
        assert resource is not None  # POST and PUT carry one (checked when parsed)
        assert target is not None  # resolved above for POST and PUT
        stored: Stored
        # The target is a new id (POST, or a condition that matched nothing), the id named,
        # or the one the condition matched when it was resolved.
        if entry.method == "PUT" and entry.condition is not None and match is not None:
            # The match found when the entry was resolved, on this same transaction: updated
            # (or found unchanged) without matching the condition again.
            stored = await unit.update_match(resource, entry.condition, match)
        elif entry.method == "POST" or entry.condition is not None:
            stored = await unit.create(resource, condition=entry.condition, resource_id=target)
            if not stored.created and entry.method == "PUT":
                stored = await unit.update({**resource, "id": stored.id})
        else:
            stored = await unit.update({**resource, "id": target})
        status = "201 Created" if stored.created else "200 OK"
        kind = stored.resource["resourceType"]
        return {
            "fullUrl": f"{kind}/{stored.id}",
            "response": {
                "status": status,
                "location": f"{kind}/{stored.id}/_history/{stored.version}",
                "etag": f'W/"{stored.version}"',
                "lastModified": stored.resource["meta"]["lastUpdated"],
            },
        }

    async def batch(self, bundle: Json) -> Json:
        """Each entry on its own (https://hl7.org/fhir/R4/http.html#brules)."""
        _check_size(bundle)
        results = []
        for raw in bundle.get("entry") or []:
            single = {"resourceType": "Bundle", "type": "transaction", "entry": [raw]}
            try:
                answer = await self.transaction(single)
                results.append(answer["entry"][0])
            except OperationOutcomeError as failure:
                response = {"status": str(failure.status), "outcome": outcome_json(failure.issues)}
                results.append({"response": response})
        return {"resourceType": "Bundle", "type": "batch-response", "entry": results}
