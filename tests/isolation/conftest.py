"""Two care units on one real ``reko-fhir serve``, on SQLite and on PostgreSQL (issue 11).

Unit A and unit B each post every golden case (``fixtures/mapping/*/expected.json``) rewritten
to their own care unit, with the same staff HSA-ids and the same patients' personnummer. A
module gets one server per backend (or a pair: :func:`start`), each on a fresh SQLite folder or
PostgreSQL schema; tokens are signed with the server's local key, as ``reko-fhir token`` signs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.golden import FIXTURES
from tests.service import Service, start_service
from tests.store.conftest import fresh_schema

Json = dict[str, Any]
HSA = "urn:oid:1.2.752.29.4.19"
PNR = "http://electronichealth.se/identifier/personnummer"
UNIT_A, UNIT_B = "SE2321000016-VC01", "SE2321000016-VC02"
STAFF_A, STAFF_B = "SE2321000016-R3K7", "SE2321000016-K2M5"  # each unit's coordinator
FK = "urn:oid:2.5.4.97|2021005521"  # Försäkringskassan, an external actor
FK_USER = "SE2021005521-FK01"
ONLY_A = "191212121212"  # a personnummer only unit A holds
CASES = sorted(p.parent.name for p in (FIXTURES / "mapping").glob("*/expected.json"))
BACKENDS = ["sqlite", "postgresql"]


def case(name: str, unit: str) -> Json:
    """The golden case's transaction Bundle with its care unit's HSA-id replaced by ``unit``
    (staff, patients, case identifiers and everything else as in the file)."""
    bundle: Json = json.loads((FIXTURES / "mapping" / name / "expected.json").read_text("utf-8"))
    own = bundle["entry"][0]["resource"]["identifier"][0]["value"]
    assert bundle["entry"][0]["resource"]["resourceType"] == "Organization"
    assert own.startswith("SE")
    rewritten: Json = json.loads(json.dumps(bundle, ensure_ascii=False).replace(own, unit))
    return rewritten


def bare_patient(personnummer: str, family: str = "Tolvansson") -> Json:
    return {
        "resourceType": "Patient",
        "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoPatient"]},
        "identifier": [{"system": PNR, "value": personnummer}],
        "name": [{"family": family, "given": ["Tolvan"]}],
    }


@dataclass
class Server:
    """One running service and the HTTP client every request of a test goes through; each
    request is remembered (method, path, query, status) for the access-log checks."""

    service: Service
    http: httpx.Client
    backend: str
    database_url: str | None
    sent: list[httpx.Response] = field(default_factory=list)

    def token(self, who: str) -> str:
        s = self.service
        return {
            "A": lambda: s.token("user/*.cruds", unit=UNIT_A, subject=STAFF_A),
            "B": lambda: s.token("user/*.cruds", unit=UNIT_B, subject=STAFF_B),
            "A admin": lambda: s.token("user/*.cruds reko/admin", unit=UNIT_A, subject=STAFF_A),
            "B admin": lambda: s.token("user/*.cruds reko/admin", unit=UNIT_B, subject=STAFF_B),
            "external": lambda: s.token(
                "system/Communication.rs", external_actor=FK, subject=FK_USER
            ),
            "platform": lambda: s.token(
                "system/*.cruds reko/admin", all_units=True, subject="SE2321000016-PLAT"
            ),
        }[who]()

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.token(who)}",
            "content-type": "application/fhir+json",
            **extra,
        }

    def request(
        self, who: str, method: str, url: str, body: Any = None, **kw: Any
    ) -> httpx.Response:
        headers = self.headers(who, **kw.pop("headers", {}))
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        answer = self.http.request(method, url, content=content, headers=headers, **kw)
        self.sent.append(answer)
        return answer

    def get(self, who: str, url: str, **kw: Any) -> httpx.Response:
        return self.request(who, "GET", url, **kw)

    def post_case(self, who: str, name: str, unit: str) -> Json:
        answer = self.request(who, "POST", "/", case(name, unit))
        assert answer.status_code == 200, answer.text
        result: Json = answer.json()
        return result

    def audit_count(self) -> int:
        """AuditEvents in the whole log (read with a platform token, itself logged after)."""
        answer = self.get("platform", "/AuditEvent", params={"_summary": "count"})
        assert answer.status_code == 200, answer.text
        total: int = answer.json()["total"]
        return total

    def stop(self) -> None:
        self.http.close()
        self.service.process.terminate()
        self.service.process.wait(timeout=15)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh schema in the test database (dropped afterwards): the server's REKO_DATABASE_URL."""
    with fresh_schema("reko_iso") as url:
        yield url


@contextmanager
def start(backend: str, folder: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A fresh ``reko-fhir serve`` on ``backend`` with its data folder in ``folder``."""
    with postgres_database() if backend == "postgresql" else _no_database() as url:
        extra = {"REKO_DATABASE_URL": url} if url else {}
        folder.mkdir(parents=True, exist_ok=True)
        service = start_service(folder / "data", {**extra, **(env or {})})
        server = Server(service, httpx.Client(base_url=service.base, timeout=60), backend, url)
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def _no_database() -> Iterator[None]:
    yield None


def without_server_fields(resource: Json) -> Json:
    """A stored resource as a client would send it again (no id, no meta but the profile)."""
    sent = copy.deepcopy(resource)
    sent.pop("id", None)
    profiles = (sent.pop("meta", None) or {}).get("profile")
    if profiles:
        sent["meta"] = {"profile": profiles}
    return sent
