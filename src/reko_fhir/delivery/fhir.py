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
Non-2xx answers raise ``error_from_status``; transport errors propagate as ``httpx`` raised them.

Several of these writes may go in one ``batch`` Bundle (:meth:`FhirTarget.push_batch`,
https://hl7.org/fhir/R4/http.html#transaction): each entry the request it would be alone,
judged alone by its own ``response.status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from reko_fhir.delivery.errors import DeliveryError, error_from_status, retry_after_seconds

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


@dataclass(frozen=True, slots=True)
class Write:
    """One idempotent write: the request sent alone, and the same request as a batch entry
    (``entry.request``, https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.request).

    ``token`` is the identifier of a conditional one (``[type]?identifier=[token]``)."""

    method: str  # PUT or DELETE
    kind: str
    path: str  # relative to the base: [type] or [type]/[id]
    token: str | None = None
    body: Json | None = None

    @property
    def params(self) -> dict[str, str] | None:
        return None if self.token is None else {"identifier": self.token}

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}" + (
            "" if self.token is None else f"?identifier={self.token}"
        )

    def entry(self) -> Json:
        """The batch entry: the same method and URL (query encoded as httpx sends it)."""
        url = self.path if self.token is None else f"{self.path}?{urlencode(self.params or {})}"
        entry: Json = {"request": {"method": self.method, "url": url}}
        if self.body is not None:
            entry["resource"] = self.body
        return entry


@dataclass(frozen=True, slots=True)
class Answer:
    """What the target answered one write: an HTTP response, or a batch-response entry's
    ``response`` (status, location, etag, outcome) and ``resource``."""

    status: int
    body: Json | None
    location: str = ""
    etag: str | None = None
    retry_after: float | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        status, body = response.status_code, _json(response)
        if status < 300 and body and body.get("resourceType") != "OperationOutcome":
            return cls(status, body)  # the stored resource says its id and version
        headers = response.headers
        return cls(
            status,
            body,
            headers.get("Location", ""),
            headers.get("ETag"),
            retry_after_seconds(headers.get("Retry-After")) if status >= 400 else None,
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def outcome(self) -> Json | None:
        body = self.body
        return body if body and body.get("resourceType") == "OperationOutcome" else None


def _version_from(answer: Answer) -> tuple[str | None, str | None]:
    """The id and version the server gave, from the body or else Location/ETag
    (https://hl7.org/fhir/R4/http.html#versioning)."""
    body = answer.body
    if body and body.get("resourceType") != "OperationOutcome":
        meta = body.get("meta") or {}
        return body.get("id"), meta.get("versionId")
    rid: str | None = None
    version: str | None = None
    parts = urlsplit(answer.location).path.strip("/").split("/")
    if "_history" in parts and parts.index("_history") >= 1:
        at = parts.index("_history")
        rid = parts[at - 1]
        version = parts[at + 1] if len(parts) > at + 1 else None
    elif len(parts) >= 2:
        rid = parts[-1]
    if answer.etag:
        version = answer.etag.removeprefix("W/").strip('"')
    return rid, version


def _entry_answer(entry: object) -> Answer:
    """A batch-response entry as an :class:`Answer`; its OperationOutcome may be in
    ``response.outcome`` or, as some servers do, in ``resource``."""
    fields: Json = entry if isinstance(entry, dict) else {}
    said = fields.get("response")
    response: Json = said if isinstance(said, dict) else {}
    code = str(response.get("status") or "").split(" ", 1)[0]
    resource, outcome = fields.get("resource"), response.get("outcome")
    body = (
        resource if isinstance(resource, dict) else outcome if isinstance(outcome, dict) else None
    )
    etag = response.get("etag")
    return Answer(
        int(code) if code.isdigit() else 0,
        body,
        str(response.get("location") or ""),
        str(etag) if etag else None,
    )


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

    def _fail(self, answer: Answer, what: str) -> DeliveryError:
        return error_from_status(
            answer.status, answer.outcome, f"{self.name}: {what}", answer.retry_after
        )

    def upsert(self, resource: Json) -> Write:
        """The idempotent write of one resource: a conditional update on its first
        identifier, else an update by id.

        The body keeps its references as they are; with a conditional update it loses its
        ``id``, since the server decides the id of the match (https://hl7.org/fhir/R4/http.html#cond-update).
        """
        kind = str(resource.get("resourceType") or "")
        if not kind.isalpha():
            raise DeliveryError("the resource has no resourceType", retryable=False)
        token = identifier_token(resource)
        if token is not None:
            body = {k: v for k, v in resource.items() if k != "id"}
            return Write("PUT", kind, kind, token, body)
        if resource.get("id"):
            return Write("PUT", kind, f"{kind}/{resource['id']}", None, dict(resource))
        raise DeliveryError(
            f"a {kind} with neither identifier nor id cannot be delivered idempotently",
            retryable=False,
        )

    async def push(self, resource: Json) -> PushResult:
        """Deliver one resource idempotently (:meth:`upsert`)."""
        return await self.send(self.upsert(resource))

    async def send(self, write: Write) -> PushResult:
        """Send one write alone and judge its answer."""
        response = await self._send(write.method, write.path, params=write.params, body=write.body)
        return await self._settle(write, Answer.of(response))

    async def push_batch(self, writes: Sequence[Write]) -> list[PushResult | DeliveryError]:
        """Send ``writes`` in one ``batch`` Bundle, ``POST [base]``
        (https://hl7.org/fhir/R4/http.html#transaction): the entries are independent, and each
        is judged on its own entry of the batch-response as it would be alone (a 412 is
        reconciled the same way). Per write: its result, or the error it failed with.

        A failure of the request itself (transport, a non-2xx status) raises, as does an answer
        that is no batch-response with one entry per write: the writes share that fate."""
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [w.entry() for w in writes]}
        what = f"POST batch of {len(writes)}"
        headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
        response = await self.client.post(self.base_url, json=bundle, headers=headers)
        answer = Answer.of(response)
        if not answer.ok:
            raise self._fail(answer, what)
        body = answer.body or {}
        entries = body.get("entry") or []
        if body.get("resourceType") != "Bundle" or body.get("type") != "batch-response":
            kind = f"{body.get('resourceType')} {body.get('type') or ''}".strip()
            raise DeliveryError(
                f"{self.name}: {what}: the answer is no batch-response Bundle ({kind})",
                status=answer.status,
                retryable=False,
            )
        if not isinstance(entries, list) or len(entries) != len(writes):
            raise DeliveryError(
                f"{self.name}: {what}: the batch-response has {len(entries)} entries",
                status=answer.status,
                retryable=False,
            )
        results: list[PushResult | DeliveryError] = []
        for write, entry in zip(writes, entries, strict=True):
            try:
                results.append(await self._settle(write, _entry_answer(entry)))
            except DeliveryError as exc:
                results.append(exc)
        return results

    async def _settle(self, write: Write, answer: Answer) -> PushResult:
        """Judge the answer to ``write`` (alone or as a batch entry): a result, or raise."""
        if write.method == "DELETE":
            # Already gone (404/410) counts as deleted, so a redelivered deletion succeeds.
            if answer.ok or answer.status in (404, 410):
                return PushResult(answer.status, write.kind, None, None)
            error = self._fail(answer, write.what)
            if write.token is not None and answer.status == 412:
                # The identifier matches several: the target must decide which one goes.
                error.retryable, error.kind = False, "conflict"
            raise error
        if answer.status == 412 and write.body is not None:
            return await self._reconcile(write.kind, write.token, write.body, answer, write.what)
        if not answer.ok:
            raise self._fail(answer, write.what)
        rid, version = _version_from(answer)
        return PushResult(answer.status, write.kind, rid, version)

    async def _reconcile(
        self, kind: str, token: str | None, body: Json, refused: Answer, what: str
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
                    outcome=refused.outcome,
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
            error = self._fail(Answer.of(response), retry_what)
            if response.status_code == 412:
                error.kind = "conflict"
            raise error
        new_id, new_version = _version_from(Answer.of(response))
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
            raise self._fail(Answer.of(response), "POST transaction")
        return _json(response) or {}

    async def delete(self, resource_type: str, resource_id: str) -> int:
        """DELETE by id (https://hl7.org/fhir/R4/http.html#delete); already gone (404/410)
        counts as deleted, so a redelivered deletion succeeds. Returns the target's status."""
        return (await self.send(self.deletion(resource_type, resource_id=resource_id))).status

    async def delete_match(self, resource_type: str, token: str) -> int:
        """Conditional delete by business identifier, ``DELETE [base]/[type]?identifier=s|v``
        (https://hl7.org/fhir/R4/http.html#3.1.0.7.1): the target's id is not needed, and no
        match (or 404/410) is a success, so a redelivered deletion changes nothing. A 412 (the
        identifier matches several) is final: the target must decide which one goes."""
        return (await self.send(self.deletion(resource_type, token=token))).status

    @staticmethod
    def deletion(kind: str, *, token: str | None = None, resource_id: str | None = None) -> Write:
        """The delete of a resource by its identifier (conditional), else by the target's id."""
        if token is not None:
            return Write("DELETE", kind, kind, token)
        return Write("DELETE", kind, f"{kind}/{resource_id}")

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
                raise self._fail(Answer.of(response), f"search {kind} (page {page})")
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
