"""Answers of two servers made comparable: the server's own ids, times and random ids aside.

Both servers get the same requests, so every id of unit B's resources is named after what the
resource *is* (its type and first identifier, a Provenance after its target), in both alike;
what has no such name (an AuditEvent) is named by where it first appears. Ids of unit A's
resources are left as they are: they are the same strings in both scripts, so a leak of one
shows. Instants (meta.lastUpdated, Provenance.recorded, Last-Modified…) become ``<instant>``.
Nothing else is changed: the rest must be equal byte for byte.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from reko_fhir.security.audit import MOST_ENTITIES  # resources an AuditEvent names

Json = dict[str, Any]
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
MASKED = re.compile(r"[0-9a-f][0-9a-f*-]{7,}")
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
HEADERS = ("content-type", "etag", "location", "last-modified", "www-authenticate")
DIRECTORY = ("Organization", "PractitionerRole")


@dataclass(frozen=True)
class Answer:
    """One request's answer, as compared: status, the headers a client reads, the body."""

    label: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str

    def text(self) -> str:
        head = " ".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.label} -> {self.status} [{head}]\n{self.body}"


def raw_answer(label: str, response: httpx.Response) -> Answer:
    """The answer with the server's own base URL (links and fullUrls are absolute; the two
    servers listen on different ports) written ``<base>``."""
    url = response.request.url
    base = f"{url.scheme}://{url.netloc.decode()}"
    headers = tuple(
        (k, response.headers[k].replace(base, "<base>")) for k in HEADERS if k in response.headers
    )
    return Answer(label, response.status_code, headers, response.text.replace(base, "<base>"))


def _walk(value: Any) -> Iterator[Json]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _decoded_queries(body: Any) -> None:
    """AuditEvent.entity.query is base64: decoded, so the ids in it are named too."""
    for node in _walk(body):
        if node.get("resourceType") == "AuditEvent":
            for entity in node.get("entity") or []:
                if "query" in entity:
                    # Ids in a logged query may be partly masked as personnummer-shaped
                    # (01009835-****-…): whichever ids a server drew; named alike here.
                    query = base64.b64decode(entity["query"]).decode()
                    entity["query"] = MASKED.sub("<id>", ID.sub("<id>", query))


def _parsed(answer: Answer) -> Any:
    try:
        body = json.loads(answer.body) if answer.body else None
    except ValueError:
        return None
    _decoded_queries(body)
    return body


def names(answers: list[Answer], keep: set[str]) -> dict[str, str]:
    """A name for every id in ``answers`` but those in ``keep`` (unit A's)."""
    named: dict[str, str] = {}
    provenances: list[tuple[str, str]] = []
    for answer in answers:
        for node in _walk(_parsed(answer)):
            kind, rid = node.get("resourceType"), node.get("id")
            if not isinstance(kind, str) or not isinstance(rid, str) or rid in keep:
                continue
            identifiers = node.get("identifier")
            if isinstance(identifiers, list) and identifiers and kind != "AuditEvent":
                if rid in named:
                    continue
                name = f"<{kind}|{identifiers[0].get('value')}>"
                # A second resource of the name (one deleted and made again): numbered in order.
                taken = sum(1 for n in named.values() if n.startswith(name[:-1]))
                named[rid] = name if not taken else f"{name[:-1]}#{taken + 1}>"
            elif kind == "Provenance":
                provenances.append((rid, str(node["target"][0]["reference"])))
    # AuditEvents in the order they were recorded: the requests were sent one by one.
    events = {
        node["id"]: node["recorded"]
        for answer in answers
        for node in _walk(_parsed(answer))
        if node.get("resourceType") == "AuditEvent" and isinstance(node.get("id"), str)
    }
    for n, rid in enumerate(sorted(events, key=lambda i: (events[i], i))):
        named[rid] = f"<AuditEvent {n}>"
    for rid, target in provenances:
        named[rid] = f"<Provenance of {_renamed(target, named)}>"
    for answer in answers:  # the rest by first appearance (of what is compared)
        body = _parsed(answer)
        shown = json.dumps(_ordered(body, sort=False)) if isinstance(body, dict) else answer.body
        text = f"{answer.label} {dict(answer.headers)} {shown}"
        for match in ID.findall(text):
            if match not in keep and match not in named:
                named[match] = f"<#{len(named)}>"
    return named


def _renamed(text: str, named: dict[str, str]) -> str:
    return ID.sub(lambda m: named.get(m.group(0), m.group(0)), text)


def normal(answer: Answer, named: dict[str, str], strip: set[str] | None = None) -> Answer:
    """``answer`` with ids named, instants blanked; ``strip``: unit A's directory resources
    (readable by every unit, by design) taken out of a searchset or history and its total."""
    body = _parsed(answer)
    for node in _walk(body) if strip else ():
        # The access log of B's directory searches names A's entries B was shown.
        if node.get("resourceType") == "AuditEvent" and "entity" in node:
            entities = node["entity"]
            resources = [e for e in entities if e.get("role", {}).get("code") == "4"]
            if len(resources) >= MOST_ENTITIES:
                # Capped at 50 of the directory B reads, A's entries among them: which and how
                # many of B's made the cut depends on them, so only "capped" is compared.
                node["entity"] = [e for e in entities if e not in resources]
                node["entity"].append({"resources": "capped"})
                continue
            node["entity"] = [
                e
                for e in entities
                if str(e.get("what", {}).get("reference", "/")).split("/")[1] not in strip
            ]
    if strip and isinstance(body, dict) and body.get("resourceType") == "Bundle":
        kept = [e for e in body.get("entry", []) if e.get("resource", {}).get("id") not in strip]
        removed = len(body.get("entry", [])) - len(kept)
        if "total" in body:
            body["total"] -= removed
        if kept:
            body["entry"] = kept
        else:
            body.pop("entry", None)
    text = answer.body if body is None else json.dumps(body, ensure_ascii=False)
    if isinstance(body, dict):
        text = json.dumps(_ordered(json.loads(_renamed(text, named))), ensure_ascii=False)
    headers = tuple(
        (k, "<instant>" if k == "last-modified" else _renamed(v, named)) for k, v in answer.headers
    )
    return Answer(
        _renamed(answer.label, named),
        answer.status,
        headers,
        INSTANT.sub("<instant>", _renamed(text, named)),
    )


def _ordered(body: Json, *, sort: bool = True) -> Json:
    """Lists a server orders by its randomly drawn ids, ordered by name instead: the resources
    a search includes (a client finds them by reference), an AuditEvent's entities."""
    entries = body.get("entry")
    if isinstance(entries, list):
        included = sorted(
            (e for e in entries if e.get("search", {}).get("mode") == "include"),
            key=lambda e: str(e.get("fullUrl")),
        )
        if included and sort:
            body["entry"] = [e for e in entries if e.get("search", {}).get("mode") != "include"]
            body["entry"] += included
    for node in _walk(body):
        if node.get("resourceType") == "AuditEvent" and isinstance(node.get("entity"), list):
            entities = node["entity"]
            resources = [e for e in entities if e.get("role", {}).get("code") == "4"]
            if len(resources) >= MOST_ENTITIES:
                # The log names the first 50 resources by id, a server's random draw: the
                # count is compared, not which 50.
                entities = [e for e in entities if e not in resources]
                entities.append({"resources": len(resources)})
            node["entity"] = (
                sorted(entities, key=lambda e: json.dumps(e, sort_keys=True)) if sort else entities
            )
    return body


def differences(one: list[Answer], other: list[Answer]) -> list[str]:
    """Every pair of answers to the same request that differ, as text for the failure."""
    assert [a.label for a in one] == [a.label for a in other] or len(one) != len(other)
    found = []
    for a, b in zip(one, other, strict=True):
        if a != b:
            first, second = a.text(), b.text()
            at = next((i for i, (x, y) in enumerate(zip(first, second, strict=False)) if x != y), 0)
            start = max(0, at - 300)
            found.append(
                f"=== {a.label}\n--- with unit A's data: …{first[start : at + 500]}\n"
                f"--- without: …{second[start : at + 500]}"
            )
    return found
