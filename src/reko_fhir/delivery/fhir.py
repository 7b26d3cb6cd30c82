"""An EHR FHIR server as a delivery target, over the FHIR RESTful API
(https://hl7.org/fhir/R4/http.html).

Every write is idempotent so that a redelivery after a lost answer changes nothing:

- a resource with a business identifier is a conditional update on its first identifier,
  ``PUT [base]/[type]?identifier=[system]|[value]``
  (https://hl7.org/fhir/R4/http.html#cond-update): the server updates the one match or
  creates the resource when there is none, so it never holds two;
- a resource without one is an update by id, ``PUT [base]/[type]/[id]``
  (https://hl7.org/fhir/R4/http.html#update), which may create it
  (https://hl7.org/fhir/R4/http.html#upsert);
- a deletion is a conditional delete on the same identifier (``DELETE [base]/[type]?identifier=…``),
  else a delete by id; something already gone is a success (https://hl7.org/fhir/R4/http.html#delete).

A 412 answer (https://hl7.org/fhir/R4/http.html#concurrency) is reconciled by reading what the
target holds: the same content is a success, other content is overwritten once with ``If-Match``.
Non-2xx answers raise ``error_from_response``; transport errors propagate as ``httpx`` raised them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from reko_fhir.delivery.errors import DeliveryError, error_from_response

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"
MAX_PAGES = 100


@dataclass(frozen=True, slots=True)
class PushResult:
    """What the target made of one resource: ``created`` (201) or ``updated`` (200), its id and
    version there, and whether a 412 had to be reconciled first."""

    status: int
    resource_type: str
    id: str | None
    version_id: str | None
    reconciled: bool = False

    @property
    def created(self) -> bool:
        return self.status == 201


def _escape(text: str) -> str:
    """Token search escaping (https://hl7.org/fhir/R4/search.html#escaping)."""
    for char in ("\\", "$", ",", "|"):
        text = text.replace(char, "\\" + char)
    return text


def identifier_token(resource: Mapping[str, Any]) -> str | None:
    """``system|value`` of the first identifier, or None when it has no value to search by."""
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    if not isinstance(first, dict) or not first.get("value"):
        return None
    return f"{_escape(str(first.get('system', '')))}|{_escape(str(first['value']))}"


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal as resources, whatever the server keeps in ``meta`` and whichever id it chose."""
    return _content(a) == _content(b)


def _content(resource: Mapping[str, Any]) -> Json:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


def _version_from(response: httpx.Response, body: Json | None) -> tuple[str | None, str | None]:
    """The id and version the server gave, from the body or else Location/ETag
    (https://hl7.org/fhir/R4/http.html#versioning)."""
    if body and body.get("resourceType") != "OperationOutcome":
        meta = body.get("meta") or {}
        return body.get("id"), meta.get("versionId")
    rid: str | None = None
    version: str | None = None
    parts = urlsplit(response.headers.get("Location", "")).path.strip("/").split("/")
    if "_history" in parts and parts.index("_history") >= 1:
        at = parts.index("_history")
        rid = parts[at - 1]
        version = parts[at + 1] if len(parts) > at + 1 else None
    elif len(parts) >= 2:
        rid = parts[-1]
    etag = response.headers.get("ETag")
    if etag:
        version = etag.removeprefix("W/").strip('"')
    return rid, version


def _json(response: httpx.Response) -> Json | None:
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class FhirTarget:
    """One EHR FHIR server; ``client`` carries its auth, TLS and timeouts."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, name: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.name = name

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Json | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = FHIR_JSON
            # Ask for the stored resource back: it carries the id and version we report.
            sent.setdefault("Prefer", "return=representation")
        return await self.client.request(
            method, self._url(path), params=params, json=body, headers=sent
        )

    def _fail(self, response: httpx.Response, what: str) -> DeliveryError:
        return error_from_response(response, f"{self.name}: {what}")

    async def push(self, resource: Json) -> PushResult:
        """Deliver one resource idempotently (conditional update, else update by id).

        The body keeps its references as they are; with a conditional update it loses its
        ``id``, since the server decides the id of the match (https://hl7.org/fhir/R4/http.html#cond-update).
        """
        kind = str(resource.get("resourceType") or "")
        if not kind.isalpha():
            raise DeliveryError("the resource has no resourceType", retryable=False)
        token = identifier_token(resource)
        if token is not None:
            body = {k: v for k, v in resource.items() if k != "id"}
            what = f"PUT {kind}?identifier={token}"
            response = await self._send("PUT", kind, params={"identifier": token}, body=body)
        elif resource.get("id"):
            body = dict(resource)
            what = f"PUT {kind}/{resource['id']}"
            response = await self._send("PUT", f"{kind}/{resource['id']}", body=body)
        else:
            raise DeliveryError(
                f"a {kind} with neither identifier nor id cannot be delivered idempotently",
                retryable=False,
            )
        if response.status_code == 412:
            return await self._reconcile(kind, token, body, response, what)
        if not response.is_success:
            raise self._fail(response, what)
        rid, version = _version_from(response, _json(response))
        return PushResult(response.status_code, kind, rid, version)

    async def _reconcile(
        self, kind: str, token: str | None, body: Json, refused: httpx.Response, what: str
    ) -> PushResult:
        """After a 412: read the current version and compare; overwrite it once with If-Match
        (https://hl7.org/fhir/R4/http.html#concurrency)."""
        if token is not None:
            matches = await self._search(kind, {"identifier": token}, max_pages=2)
            if len(matches) != 1:
                # For a conditional update a 412 also means "more than one match".
                raise DeliveryError(
                    f"{self.name}: {what}: HTTP 412 and {len(matches)} resources match",
                    status=412,
                    retryable=False,
                    kind="conflict",
                    outcome=_json(refused),
                )
            current = matches[0]
        else:
            response = await self._send("GET", f"{kind}/{body['id']}")
            if not response.is_success:
                raise self._fail(refused, what)
            current = _json(response) or {}
        rid = str(current.get("id", ""))
        version = (current.get("meta") or {}).get("versionId")
        if same_content(current, body):
            return PushResult(200, kind, rid, version, reconciled=True)
        if not rid or not version:
            raise self._fail(refused, what)
        retry_what = f"PUT {kind}/{rid} If-Match {version}"
        response = await self._send(
            "PUT", f"{kind}/{rid}", body={**body, "id": rid}, headers={"If-Match": f'W/"{version}"'}
        )
        if not response.is_success:
            error = self._fail(response, retry_what)
            if response.status_code == 412:
                error.kind = "conflict"
            raise error
        new_id, new_version = _version_from(response, _json(response))
        return PushResult(response.status_code, kind, new_id, new_version, reconciled=True)

    async def push_transaction(self, bundle: Json) -> Json:
        """POST a transaction Bundle to the base (https://hl7.org/fhir/R4/http.html#transaction);
        the server applies all entries or none. Returns the transaction-response Bundle."""
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise DeliveryError("not a transaction Bundle", retryable=False)
        response = await self.client.post(
            self.base_url,
            json=bundle,
            headers={"Accept": FHIR_JSON, "Content-Type": FHIR_JSON},
        )
        if not response.is_success:
            raise self._fail(response, "POST transaction")
        return _json(response) or {}

    async def delete(self, resource_type: str, resource_id: str) -> int:
        """DELETE by id (https://hl7.org/fhir/R4/http.html#delete); already gone (404/410)
        counts as deleted, so a redelivered deletion succeeds. Returns the target's status."""
        response = await self._send("DELETE", f"{resource_type}/{resource_id}")
        if response.is_success or response.status_code in (404, 410):
            return response.status_code
        raise self._fail(response, f"DELETE {resource_type}/{resource_id}")

    async def delete_match(self, resource_type: str, token: str) -> int:
        """Conditional delete by business identifier, ``DELETE [base]/[type]?identifier=s|v``
        (https://hl7.org/fhir/R4/http.html#3.1.0.7.1): the target's id is not needed, and no
        match (or 404/410) is a success, so a redelivered deletion changes nothing. A 412 (the
        identifier matches several) is final: the target must decide which one goes."""
        what = f"DELETE {resource_type}?identifier={token}"
        response = await self._send("DELETE", resource_type, params={"identifier": token})
        if response.is_success or response.status_code in (404, 410):
            return response.status_code
        error = self._fail(response, what)
        if response.status_code == 412:
            error.retryable, error.kind = False, "conflict"
        raise error

    async def pull(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        patient: str | None = None,
        organization: str | None = None,
        params: Mapping[str, str] | None = None,
        page_size: int | None = None,
        max_pages: int = MAX_PAGES,
    ) -> list[Json]:
        """Resources of a type changed after ``since`` (https://hl7.org/fhir/R4/search.html#lastUpdated),
        optionally for one patient or organization (care unit), following ``next`` links
        (https://hl7.org/fhir/R4/http.html#paging) for at most ``max_pages`` pages."""
        query: dict[str, str] = dict(params or {})
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            query["_lastUpdated"] = "gt" + moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if patient is not None:
            query["patient"] = patient
        if organization is not None:
            query["organization"] = organization
        if page_size is not None:
            query["_count"] = str(page_size)
        return await self._search(resource_type, query, max_pages=max_pages)

    async def _search(self, kind: str, query: Mapping[str, str], *, max_pages: int) -> list[Json]:
        found: list[Json] = []
        response = await self._send("GET", kind, params=query)
        for page in range(1, max_pages + 1):
            if not response.is_success:
                raise self._fail(response, f"search {kind} (page {page})")
            bundle = _json(response) or {}
            for entry in bundle.get("entry") or []:
                mode = (entry.get("search") or {}).get("mode", "match")
                resource = entry.get("resource")
                if mode == "match" and isinstance(resource, dict):
                    found.append(resource)
            next_url = next(
                (
                    link.get("url")
                    for link in bundle.get("link") or []
                    if link.get("relation") == "next"
                ),
                None,
            )
            if not next_url:
                return found
            if not str(next_url).startswith(self.base_url + "/") and not str(next_url).startswith(
                self.base_url + "?"
            ):
                # Credentials go with every request: never follow a link to another server.
                raise DeliveryError(
                    f"{self.name}: a next link leaves the server: {next_url}", retryable=False
                )
            response = await self.client.get(str(next_url), headers={"Accept": FHIR_JSON})
        raise DeliveryError(
            f"{self.name}: search {kind} has more than {max_pages} pages", retryable=False
        )
