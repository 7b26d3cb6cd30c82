"""Issue 11's acceptance: two care units on one real ``reko-fhir serve``, SQLite and PostgreSQL.

Unit A and unit B each post every golden case, with the same staff HSA-ids and the same
patients' personnummer. Then every interaction of the CapabilityStatement — read, vread,
history, search with each parameter, chained search, ``_include``, ``$everything``,
conditional create/update/delete, transactions, a batch, ``$validate``, the access log — as
B and as an external actor must answer exactly as on a second server where A never wrote
(byte for byte once ids and instants are named: :mod:`tests.isolation.compare`), and A's own
searches must answer after B's writes exactly as before. Organizations and PractitionerRoles
are read by every unit (the directory is not patient data): in B's directory searches, A's
entries are the one allowed difference, and are taken out before comparing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.isolation.attempts import a_searches
from tests.isolation.compare import Answer, differences, names, normal
from tests.isolation.conftest import BACKENDS, UNIT_A, UNIT_B, Server, start
from tests.isolation.script import (
    DIRECTORY,
    Holdings,
    Step,
    a_extras,
    b_extras,
    b_script,
    fetch_content,
    only_mine,
    post_cases,
    run,
)


@dataclass
class World:
    full: Server  # A wrote, then B
    bare: Server  # only B wrote
    a: Holdings
    steps: list[Step]
    with_a: list[Answer]
    without_a: list[Answer]
    a_before: list[Answer]
    a_after: list[Answer]


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    backend = request.param
    folder = tmp_path_factory.mktemp(f"two-units-{backend}")
    with start(backend, folder / "full") as full, start(backend, folder / "bare") as bare:
        a = Holdings()
        post_cases(full, "A", UNIT_A, a)
        a_extras(full, a)
        fetch_content(full, "A", a)
        a_steps = a_searches(a)
        a_before = run(full, a_steps, a)
        capabilities = httpx.get(f"{full.service.base}/metadata").json()
        a_log = full.get("A", "/AuditEvent", params={"_count": "3"}).json()
        steps = b_script(capabilities, a, [e["resource"]["id"] for e in a_log["entry"]])
        answers = {}
        for server in (full, bare):
            b = Holdings()
            setup = post_cases(server, "B", UNIT_B, b)
            setup += b_extras(server, b)
            fetch_content(server, "B", b)
            answers[server.service.base] = setup + run(server, steps, b)
        a_after = run(full, a_steps, a)
        yield World(
            full,
            bare,
            a,
            steps,
            answers[full.service.base],
            answers[bare.service.base],
            a_before,
            a_after,
        )


def _normalised(world: World) -> tuple[list[Answer], list[Answer]]:
    keep = world.a.all_ids()
    setup = len(world.with_a) - len(world.steps)
    strip_of = [False] * setup + [s.strip or "access log" in s.label for s in world.steps]
    a_directory = {rid for rid, c in world.a.content.items() if c["resourceType"] in DIRECTORY}
    with_names, without_names = names(world.with_a, keep), names(world.without_a, keep)
    with_a = [
        normal(x, with_names, a_directory if strip else None)
        for x, strip in zip(world.with_a, strip_of, strict=True)
    ]
    without_a = [
        normal(x, without_names, a_directory if strip else None)
        for x, strip in zip(world.without_a, strip_of, strict=True)
    ]
    return with_a, without_a


def test_b_and_an_external_actor_get_what_they_would_if_a_never_wrote(world: World) -> None:
    with_a, without_a = _normalised(world)
    found = differences(with_a, without_a)
    labels = [f.split("\n")[0] for f in found]
    assert not found, f"{len(found)} of {len(with_a)} answers differ: {labels}\n" + "\n".join(
        found[:5]
    )


def test_the_script_reaches_every_interaction_and_both_outcomes(world: World) -> None:
    """The comparison is not vacuous: B's script got data (200/201), absences (404), refusals
    (403, 422) and A's ids reached the server in reads, writes, searches and transactions."""
    statuses = {a.status for a in world.without_a}
    # (B's EpisodeOfCare about A's patient is refused, 422, in both worlds: no 204 for its delete.)
    assert {200, 201, 403, 404, 422} <= statuses, statuses
    labels = " ".join(s.label for s in world.steps)
    for words in (
        "B reads <A's Patient",
        "B vreads <A's Procedure",
        "B history of <A's CarePlan",
        "B history of Procedure",
        "B $everything of <A's Patient",
        "_include=Procedure:patient",
        "patient.identifier=",
        "B updates <A's Consent",
        "B deletes <A's Procedure",
        "B conditional create of <A's only pnr>",
        "B conditional update of <A's only pnr>",
        "conditional delete of <A's only pnr>",
        "B batch",
        "FK reads <A's notice>",
        "B system history",
        "B's access log",
    ):
        assert words in labels, words
    # B's own data is really there: its searches find its cases, FK its notice.
    by_label = dict(
        zip([s.label for s in world.steps], world.without_a[-len(world.steps) :], strict=True)
    )
    assert '"total":22' in by_label["B searches Procedure?count"].body.replace(" ", "")
    assert '"total":1' in by_label["FK counts notices"].body.replace(" ", "")


def test_a_searches_the_same_after_b_wrote(world: World) -> None:
    a_directory = {rid for rid, c in world.a.content.items() if c["resourceType"] in DIRECTORY}
    before = [_own_view(x, a_directory) for x in world.a_before]
    after = [_own_view(x, a_directory) for x in world.a_after]
    found = differences(after, before)
    assert not found, "\n".join(found[:5])
    assert (
        '"total": 22'
        in world.a_before[[a.label for a in world.a_before].index("A searches Procedure")].body
    )


def _own_view(answer: Answer, a_directory: set[str]) -> Answer:
    if "Organization" in answer.label or "PractitionerRole" in answer.label:
        return only_mine(answer, a_directory)
    return answer


def test_every_request_is_in_the_access_log_with_its_patients_and_resources(
    world: World,
) -> None:
    """(c): one AuditEvent per request, in order, naming the patients and resources the answer
    showed or the write touched — transactions, batches and deletes included. A batch's
    entries commit one by one, each with its own AuditEvent (so a committed entry is never
    unlogged): one per entry that wrote, each naming every resource the batch named (in this
    suite every 2xx batch entry writes)."""
    for server in (world.full, world.bare):
        sent = list(server.sent)
        expected = [_events_of(response) for response in sent]
        total, events = _all_events(server)
        assert total == sum(expected), (server.backend, total, sum(expected), len(sent))
        at = 0
        for response, count in zip(sent, expected, strict=True):
            _check_events(response, events[at : at + count])
            at += count


def _events_of(response: httpx.Response) -> int:
    body = response.json() if response.content else {}
    if body.get("type") != "batch-response":
        return 1
    wrote = sum(1 for e in body["entry"] if e["response"]["status"][:1] == "2")
    return max(wrote, 1)


def _all_events(server: Server) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    """How many events the log held when first read, and those events, oldest first (the
    reads of this function are logged too, after they answer: they are left out)."""
    events: list[dict] = []  # type: ignore[type-arg]
    headers = server.headers("platform")
    first = None
    offset = 0
    while first is None or offset < first:
        page = server.http.get(
            "/AuditEvent", params={"_count": "1000", "_offset": str(offset)}, headers=headers
        ).json()
        first = page["total"] if first is None else first
        events += [e["resource"] for e in page.get("entry", [])]
        offset += 1000
    # Each read is logged after it answers, so a later page repeats one event: once each.
    unique = {e["id"]: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: (e["recorded"], e["id"]))
    return first, ordered[:first]


def _refs(event: dict) -> set[str]:  # type: ignore[type-arg]
    return {e["what"]["reference"] for e in event.get("entity", []) if "what" in e}


def _check_events(response: httpx.Response, events: list[dict]) -> None:  # type: ignore[type-arg]
    request = response.request
    where = f"{request.method} {request.url.path}?{request.url.query.decode()} -> {response.status_code}"
    outcome = "0" if response.status_code < 400 else ("4" if response.status_code < 500 else "8")
    refs: set[str] = set()
    for event in events:
        assert event["outcome"] == outcome, where
        code = event["subtype"][0]["code"]
        if request.method == "POST" and request.url.path == "/":
            kind = "batch" if b'"type": "batch"' in request.content else "transaction"
            assert code == kind, where
        if request.url.query and request.method == "GET":
            queries = [e["query"] for e in event.get("entity", []) if "query" in e]
            assert queries, where
        refs |= _refs(event)
    expected = _expected_refs(response)
    assert expected <= refs, f"{where}: missing {sorted(expected - refs)[:5]}"


def _expected_refs(response: httpx.Response) -> set[str]:
    """What the answer showed or the request wrote, as AuditEvent entity references."""
    request = response.request
    parts = [p for p in request.url.path.strip("/").split("/") if p]
    found: set[str] = set()
    instance = len(parts) > 1 and parts[1][:1] not in ("_", "$")
    if instance and parts[0][:1].isupper() and parts[0] != "AuditEvent":
        found.add(f"{parts[0]}/{parts[1]}")  # the resource named, whatever the answer
    if request.method == "POST" and not parts:  # a Bundle's entries name resources too
        sent = json.loads(request.content)
        for entry in sent.get("entry", []):
            url = entry["request"]["url"]
            if "?" not in url and url.count("/") == 1:
                found.add(url)
    if response.status_code >= 400 or not response.content:
        return found
    body = response.json()
    if body.get("resourceType") == "Bundle" and body.get("type", "").endswith("-response"):
        for entry in body.get("entry", []):
            location = entry.get("response", {}).get("location")
            if location and not location.startswith("Provenance"):
                found.add("/".join(location.split("/")[:2]))
        return found
    shown = [e["resource"] for e in body.get("entry", []) if "resource" in e]
    if body.get("resourceType") not in ("Bundle", "OperationOutcome", "AuditEvent"):
        shown.append(body)
    entities = sorted(
        f"{r['resourceType']}/{r['id']}"
        for r in shown
        if r.get("resourceType") not in ("Patient", "OperationOutcome", "AuditEvent") and "id" in r
    )
    patients = {f"Patient/{r['id']}" for r in shown if r.get("resourceType") == "Patient"}
    for r in shown:
        for element in ("subject", "patient"):
            ref = (
                (r.get(element) or {}).get("reference")
                if isinstance(r.get(element), dict)
                else None
            )
            if isinstance(ref, str) and ref.startswith("Patient/"):
                patients.add(ref)
    return found | patients | set(entities[:50])
