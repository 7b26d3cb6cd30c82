"""Never a 500, never a hang (issue 12, point 11): a corpus of hostile requests against a real
``reko-fhir serve``, sent on raw sockets so that nothing on the client side tidies them up.

Every answer must be an OperationOutcome with the expected status (a few probes that must
succeed check their Bundle instead), and every request must be in the access log (the
AuditEvent rows) with the status the client got. At the end the server's log holds no
traceback. The in-process tests below cover what needs the app's insides: XML rendering off the
event loop, the logged outcome of an answer that fails to render, and both databases.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from reko_fhir.security.tokens import LOCAL_ISSUER
from reko_fhir.store.partition import Partitions
from tests.api.test_api import _APPS, PLATFORM_UNIT, client  # noqa: F401 - SQLite and PG
from tests.golden import FIXTURES
from tests.service import Service, start_service

Json = dict[str, Any]
PATIENT = {"resourceType": "Patient", "name": [{"family": "Hostile"}]}
SEED = FIXTURES / "valid" / "patient-personnummer-check-digit.json"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(tmp_path_factory.mktemp("hostile") / "data")
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=15)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Json:
        document: Json = json.loads(self.body)
        return document


def send(service: Service, head: bytes, body: bytes = b"") -> Answer:
    """One request on its own connection, exactly as given; the whole answer."""
    port = int(service.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, rest)


def request_head(
    method: str, target: bytes, token: str | None, body: bytes, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} ".encode() + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}".encode())
    if body:
        lines.append(b"Content-Type: application/fhir+json")
        lines.append(f"Content-Length: {len(body)}".encode())
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def audit_outcomes(service: Service) -> list[str]:
    """Every access-log row's outcome, oldest first: ``HTTP <status>`` for a failure (its
    ``outcomeDesc``), ``success`` for outcome 0."""
    with sqlite3.connect(service.data_dir / "reko.sqlite3") as db:
        rows = db.execute("SELECT content FROM audit_event ORDER BY recorded, id").fetchall()
    events = [json.loads(content) for (content,) in rows]
    return [e.get("outcomeDesc", "success" if e["outcome"] == "0" else "?") for e in events]


def logged(status: int) -> str:
    return "success" if status < 400 else f"HTTP {status}"


def rs256_token_for_an_ec_key(service: Service) -> str:
    """Signed RS256 under the kid of the service's EC key (the issue's 500 and traceback)."""
    now = int(time.time())
    claims = {"sub": "x", "iss": LOCAL_ISSUER, "aud": "reko-fhir", "iat": now, "exp": now + 60}
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": service.key().kid})


def no_next_link(answer: Answer) -> None:
    relations = [lk["relation"] for lk in answer.json()["link"]]
    assert relations == ["self"], relations  # the issue: next == self, a client looped


def empty_history(answer: Answer) -> None:
    assert answer.json()["type"] == "history"
    assert "entry" not in answer.json()  # nothing changed since a date to come


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    target: bytes
    status: int
    body: bytes = b""
    token: str | Callable[[Service], str | None] = "valid"
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Answer], None] | None = None  # a success: its own check, not an outcome


def _json(document: Json) -> bytes:
    return json.dumps(document).encode()


def _transaction_with_one_full_url_twice() -> bytes:
    entry = {
        "fullUrl": "urn:uuid:2b7e0c4a-4b35-4f0b-9a4e-111111111111",
        "resource": PATIENT,
        "request": {"method": "POST", "url": "Patient"},
    }
    return _json({"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]})


def created(answer: Answer) -> None:
    assert answer.json()["resourceType"] == "Patient"


PROBES = [
    # Not hostile: a patient for the paging and history probes to find.
    Probe("seed", "POST", b"/Patient", 201, SEED.read_bytes(), check=created),
    # A lone surrogate: a UnicodeEncodeError on insert (500) before.
    Probe(
        "lone-surrogate",
        "POST",
        b"/Patient",
        400,
        b'{"resourceType":"Patient","name":[{"family":"A\\ud800B"}]}',
    ),
    # U+FFFF and U+FFFE: stored (201) and then no XML read of them answered.
    Probe("u-ffff", "POST", b"/Patient", 400, _json({**PATIENT, "name": [{"family": "A\uffffB"}]})),
    Probe("u-fffe-escaped", "POST", b"/Patient", 400, b'{"resourceType":"Patient","id":"\\ufffe"}'),
    Probe("bdl-7", "POST", b"/", 400, _transaction_with_one_full_url_twice()),
    Probe("alg-not-the-keys", "GET", b"/Patient", 401, token=rs256_token_for_an_ec_key),
    Probe(
        "hundred-year-token",
        "GET",
        b"/Patient",
        401,
        token=lambda s: s.token(lifetime=100 * 365 * 24 * 3600),
    ),
    Probe("count-zero", "GET", b"/Patient?_count=0", 200, check=no_next_link),
    Probe("since-garbage", "GET", b"/_history?_since=garbage", 400),
    Probe("since-garbage-type", "GET", b"/Patient/_history?_since=2025-13-45", 400),
    Probe("since-future", "GET", b"/Patient/_history?_since=2099-01-01", 200, check=empty_history),
    Probe("patch", "PATCH", b"/Patient/1", 405, _json(PATIENT)),
    Probe("options", "OPTIONS", b"/", 405),
    Probe("options-metadata", "OPTIONS", b"/metadata", 405),
    Probe("unknown-method", "PROPFIND", b"/Patient", 405),
    Probe("cr-lf-path", "GET", b"/Patient%0d%0aSet-Cookie:x", 404),
    Probe("cr-lf-id", "GET", b"/Patient/a%0d%0ab", 404),
    Probe("no-such-type", "GET", b"/Nonsense", 404),
    Probe("url-200-kb", "GET", b"/Patient?identifier=" + b"a" * 200_000, 414),
    Probe("unknown-parameter", "GET", b"/Patient?name=Nobody", 400),
    Probe("no-token", "GET", b"/Patient", 401, token=lambda _: None),
]


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_every_hostile_request_is_answered_and_logged_as_answered(
    service: Service, probe: Probe
) -> None:
    token = service.token() if probe.token == "valid" else probe.token(service)  # type: ignore[operator]
    before = audit_outcomes(service)
    head = request_head(probe.method, probe.target, token, probe.body, probe.headers)
    answer = send(service, head, probe.body)
    assert answer.status == probe.status, answer.body[:300]
    assert answer.headers["content-type"].startswith("application/fhir+json")
    if probe.check is not None:
        probe.check(answer)
    else:
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome", outcome
        assert outcome["issue"][0]["severity"] == "error"
    if probe.status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert audit_outcomes(service)[len(before) :] == [logged(probe.status)]
    assert service.healthy()


def test_head_is_405_without_a_body_and_logged(service: Service) -> None:
    before = audit_outcomes(service)
    answer = send(service, request_head("HEAD", b"/Patient", service.token(), b"", {}))
    assert answer.status == 405
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert audit_outcomes(service)[len(before) :] == ["HTTP 405"]


def test_a_client_gone_mid_body_is_a_client_abort_not_a_failure(service: Service) -> None:
    port = int(service.base.rsplit(":", 1)[1])
    before = audit_outcomes(service)
    head = request_head("POST", b"/Patient", service.token(), b"x" * 1000, {})
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + b'{"resourceType": "Pat')  # 21 of the 1,000 bytes announced
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while len(audit_outcomes(service)) == len(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert audit_outcomes(service)[len(before) :] == ["HTTP 400"]
    log = service.log.read_text(encoding="utf-8", errors="replace")
    assert "client aborted POST /Patient mid-body" in log
    assert service.healthy()


def test_the_server_log_holds_no_traceback(service: Service) -> None:
    """Last in the module: nothing any probe sent made the server fail."""
    log = service.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log
    assert "unexpected failure" not in log


# -- in-process: the app's insides, on SQLite and PostgreSQL ---------------------------------


async def test_a_lone_surrogate_is_400_on_both_databases(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    # A valid patient but for the surrogate: it used to pass validation and fail the insert.
    body = SEED.read_bytes().replace("Petrović".encode(), b"A\\ud800B")
    assert b"ud800" in body
    headers = {"content-type": "application/fhir+json"}
    created = await client.post("/Patient", content=SEED.read_bytes(), headers=headers)
    assert created.status_code == 201
    stored = created.json()["id"]
    for method, target in (("POST", "/Patient"), ("PUT", f"/Patient/{stored}")):
        sent = body.replace(b"{", f'{{"id": "{stored}", '.encode(), 1) if method == "PUT" else body
        answer = await client.request(method, target, content=sent, headers=headers)
        assert answer.status_code == 400, answer.text
        assert "U+D800" in answer.json()["issue"][0]["diagnostics"]


async def test_xml_is_rendered_off_the_event_loop(
    client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow XML rendering (a 1,000-entry page took 4 s) must not hold ``/healthz`` up."""
    from reko_fhir.api import edges  # noqa: PLC0415

    real = edges.write_body

    def slow(resource: Json, xml: bool) -> tuple[bytes, str]:
        if xml:
            time.sleep(1.5)  # blocks whichever thread runs it
        return real(resource, xml)

    monkeypatch.setattr(edges, "write_body", slow)

    async def health() -> float:
        # Timed from before the pause: a blocked loop wakes this task late, not just slowly.
        started = time.perf_counter()
        await asyncio.sleep(0.3)  # the XML rendering is under way by now
        assert (await client.get("/healthz")).status_code == 200
        return time.perf_counter() - started - 0.3

    xml, waited = await asyncio.gather(client.get("/Patient", params={"_format": "xml"}), health())
    assert xml.status_code == 200
    assert waited < 0.4, f"/healthz waited {waited:.2f} s for the XML rendering"


async def test_an_answer_that_cannot_be_rendered_is_logged_as_the_500_it_is(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    """A U+FFFF stored before writes refused it: the XML read is an outcome, and the access
    log says 500, not success (it said outcome 0 while the client got a 500)."""
    store = _APPS[client].state.repository.scoped(Partitions.of_unit(PLATFORM_UNIT))
    legacy = {"resourceType": "Organization", "name": "A\uffffB"}
    stored = await store.in_unit(lambda unit: unit.create(legacy))
    answer = await client.get(f"/Organization/{stored.id}", params={"_format": "xml"})
    assert answer.status_code == 500
    assert answer.json()["resourceType"] == "OperationOutcome"
    events = (await client.get("/AuditEvent", params={"_count": "1"})).json()
    assert events["entry"][0]["resource"]["outcome"] == "8"  # serious failure, not 0
    assert events["entry"][0]["resource"]["outcomeDesc"] == "HTTP 500"
