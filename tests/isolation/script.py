"""What each unit sends: its cases, and the requests of every interaction of /metadata.

A :class:`Step` is one request written against *names* (``Patient|197804122385``), resolved to
ids per server: unit B's ids differ between the two servers, unit A's are the same strings in
both scripts (on the server without A they name nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.isolation.compare import DIRECTORY, Answer, raw_answer
from tests.isolation.conftest import (
    CASES,
    ONLY_A,
    PNR,
    UNIT_B,
    Server,
    bare_patient,
    case,
    without_server_fields,
)

Json = dict[str, Any]
Key = tuple[str, str]  # (resource type, first identifier value)
CASE_TYPES = ("Consent", "EpisodeOfCare", "CarePlan", "Procedure", "CareTeam", "Communication")
PATIENT_DATA = ("Patient", *CASE_TYPES, "Provenance")
FK_CONSENT = "SAM-0117-3"  # unit B's renewed consent for Försäkringskassan


@dataclass
class Holdings:
    """A unit's resources on one server: id by (type, identifier value), and their content."""

    ids: dict[Key, str] = field(default_factory=dict)
    content: dict[str, Json] = field(default_factory=dict)

    def id(self, kind: str, value: str) -> str:
        return self.ids[(kind, value)]

    def of(self, kind: str) -> list[str]:
        return [rid for (k, _), rid in self.ids.items() if k == kind]

    def keys(self, kind: str) -> list[str]:
        return [value for (k, value) in self.ids if k == kind]

    def all_ids(self) -> set[str]:
        return set(self.ids.values()) | set(self.content)


def _remember(holdings: Holdings, bundle: Json, answer: Json) -> None:
    for entry, done in zip(bundle["entry"], answer["entry"], strict=True):
        kind, _, query = entry["request"]["url"].partition("?")
        value = query.rpartition("|")[2]
        holdings.ids[(kind, value)] = done["response"]["location"].split("/")[1]


def post_cases(server: Server, who: str, unit: str, holdings: Holdings) -> list[Answer]:
    """Every golden case as ``unit`` (with its token ``who``); the answers, for comparison."""
    answers = []
    for name in CASES:
        bundle = case(name, unit)
        answer = server.request(who, "POST", "/", bundle)
        assert answer.status_code == 200, answer.text
        _remember(holdings, bundle, answer.json())
        answers.append(raw_answer(f"{who} posts case {name}", answer))
    return answers


def fetch_content(server: Server, who: str, holdings: Holdings) -> None:
    """The stored content of each of the unit's resources (read as the unit itself)."""
    for rid in list(holdings.ids.values()):
        kind = next(k for (k, _), i in holdings.ids.items() if i == rid)
        answer = server.get(who, f"/{kind}/{rid}")
        assert answer.status_code == 200, answer.text
        holdings.content[rid] = answer.json()
    provenance = server.get(who, "/Provenance", params={"_count": "1000"}).json()
    for entry in provenance.get("entry", []):
        holdings.content[entry["resource"]["id"]] = entry["resource"]


def a_extras(server: Server, holdings: Holdings) -> None:
    """What only unit A holds besides the cases: a patient with a personnummer B never sent."""
    answer = server.request("A", "POST", "/Patient", bare_patient(ONLY_A))
    assert answer.status_code == 201, answer.text
    holdings.ids[("Patient", ONLY_A)] = answer.json()["id"]


def b_extras(server: Server, holdings: Holdings) -> list[Answer]:
    """Unit B renews its patient's consent for Försäkringskassan, so an external actor has a
    notice of B's to read (A's stays revoked)."""
    patient = holdings.id("Patient", "199103744521")
    fk = holdings.id("Organization", "2021005521")
    consent = {
        "resourceType": "Consent",
        "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoConsent"]},
        "identifier": [
            {
                "system": "https://journal.region-exempel.se/sid/rehabkoordinering",
                "value": FK_CONSENT,
            }
        ],
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": "2025-05-02",
        "organization": [{"reference": f"Organization/{holdings.id('Organization', UNIT_B)}"}],
        "policyRule": {
            "coding": [
                {
                    "system": "http://reko-fhir.se/fhir/CodeSystem/reko-policy",
                    "code": "sfs-2019-1297",
                }
            ]
        },
        "provision": {
            "type": "permit",
            "period": {"start": "2025-03-12"},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": f"Organization/{fk}"},
                }
            ],
        },
        "extension": [
            {
                "url": "http://reko-fhir.se/fhir/StructureDefinition/consent-form",
                "valueCoding": {
                    "system": "http://reko-fhir.se/fhir/CodeSystem/reko-consent-form",
                    "code": "skriftligt",
                },
            }
        ],
    }
    answer = server.request("B", "POST", "/Consent", consent)
    assert answer.status_code == 201, answer.text
    holdings.ids[("Consent", FK_CONSENT)] = answer.json()["id"]
    return [raw_answer("B renews a consent for Försäkringskassan", answer)]


# -- the interactions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request: who sends it, and how, given the server's holdings of unit B."""

    label: str
    who: str
    method: str
    url: Callable[[Holdings], str]
    body: Callable[[Holdings], Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    strip: bool = False  # a directory search: unit A's directory entries are there by design


def run(server: Server, steps: list[Step], b: Holdings) -> list[Answer]:
    answers = []
    for step in steps:
        body = step.body(b) if step.body else None
        response = server.request(step.who, step.method, step.url(b), body, headers=step.headers)
        answers.append(raw_answer(step.label, response))
        if response.status_code == 201 and isinstance(body, dict) and body.get("identifier"):
            b.ids[(body["resourceType"], body["identifier"][0]["value"])] = response.json()["id"]
    return answers


def q(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _values(resources: list[Json], element: str) -> list[str]:
    """Search values of ``element`` found in ``resources`` (token: system|code)."""
    found: list[str] = []
    for resource in resources:
        value = resource.get(element)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict) and element == "identifier" and "value" in item:
                found += [f"{item.get('system', '')}|{item['value']}", str(item["value"])]
            elif isinstance(item, dict):
                found += [f"{c.get('system', '')}|{c['code']}" for c in item.get("coding", [])]
    return list(dict.fromkeys(found))[:4]


def b_script(capabilities: Json, a: Holdings, a_events: list[str]) -> list[Step]:
    """Every interaction of the CapabilityStatement, as unit B and as an external actor, with
    the values of unit A's data (same staff, same personnummer, same case identifiers), A's
    ids, and B's own."""
    steps: list[Step] = []
    resources = capabilities["rest"][0]["resource"]
    a_patients = {value: a.id("Patient", value) for value in a.keys("Patient")}

    def add(label: str, who: str, method: str, url: Callable[[Holdings], str], **kw: Any) -> None:
        steps.append(Step(label, who, method, url, **kw))

    for definition in resources:
        kind = definition["type"]
        if kind == "AuditEvent":
            continue
        directory = kind in DIRECTORY
        interactions = {i["code"] for i in definition["interaction"]}
        mine = [r for rid, r in a.content.items() if r.get("resourceType") == kind]

        # search-type: every parameter with A's values, B's own, and the result parameters
        def search(label: str, k: str = kind, d: bool = directory, **params: str) -> None:
            full = {**params, "_count": "1000"} if d else params
            add(
                f"B searches {k}?{label}",
                "B",
                "GET",
                lambda _b, query=full, k=k: q(f"/{k}", **query),
                strip=d,
            )

        search("")
        if not directory:
            search("count", _summary="count")
            search("accurate", _total="accurate", _count="2")
            search("page 2", _count="2", _offset="2")
            search("sorted", _sort="_lastUpdated", _count="5")
            search("none", _total="none", _count="3")
        for param in definition.get("searchParam", []):
            name, kind_of = param["name"], param["type"]
            if name == "_id":
                for rid in a.of(kind)[:2]:
                    search(f"_id=<A's {kind}>", _id=rid)
                steps.append(
                    Step(
                        f"B searches {kind} by its own _id",
                        "B",
                        "GET",
                        lambda b, k=kind: q(f"/{k}", _id=",".join(b.of(k)[:2])),
                        strip=directory,
                    )
                )
            elif kind_of == "date":
                for value in ("ge2000-01-01", "lt2100-01-01", "eq2025-03", "le2025-04-15"):
                    search(f"{name}={value}", **{name: value})
            elif kind_of == "reference":
                for pnr, pid in a_patients.items():
                    search(f"{name}=<A's Patient {pnr}>", **{name: f"Patient/{pid}"})
                    search(f"{name}=<A's bare id {pnr}>", **{name: pid})
                for pnr in a_patients:
                    if pnr == ONLY_A:
                        continue
                    steps.append(
                        Step(
                            f"B searches {kind}?{name}=<B's Patient {pnr}>",
                            "B",
                            "GET",
                            lambda b, n=name, v=pnr, k=kind: q(
                                f"/{k}", **{n: f"Patient/{b.id('Patient', v)}"}
                            ),
                            strip=directory,
                        )
                    )
            else:
                for value in _values(mine, name):
                    search(f"{name}={value}", **{name: value})
        if not directory:
            for pnr in a_patients:
                search(f"patient.identifier={pnr}", **{"patient.identifier": pnr})
                search(f"subject.identifier={PNR}|{pnr}", **{"subject.identifier": f"{PNR}|{pnr}"})
            for include in definition.get("searchInclude", []):
                search(f"_include={include}", _include=include)
                for pnr, pid in a_patients.items():
                    search(
                        f"_include={include}&patient=<A's {pnr}>",
                        _include=include,
                        patient=f"Patient/{pid}",
                    )
            if (
                "recipient" in [p["name"] for p in definition.get("searchParam", [])]
                or kind == "Communication"
            ):
                for org in a.of("Organization"):
                    search("recipient=<A's organisation>", recipient=f"Organization/{org}")
        # history-type
        if "history-type" in interactions:
            add(
                f"B history of {kind}",
                "B",
                "GET",
                lambda _b, k=kind: f"/{k}/_history",
                strip=directory,
            )
        # instance interactions on A's ids (what a guessed or leaked id would give)
        for rid in (
            a.of(kind)
            if kind != "Provenance"
            else [r for r, c in a.content.items() if c["resourceType"] == "Provenance"][:3]
        ):
            label = f"<A's {kind} {_key_of(a, rid)}>"
            if not directory:
                add(f"B reads {label}", "B", "GET", lambda _b, k=kind, i=rid: f"/{k}/{i}")
                add(
                    f"B vreads {label}",
                    "B",
                    "GET",
                    lambda _b, k=kind, i=rid: f"/{k}/{i}/_history/1",
                )
                add(
                    f"B history of {label}",
                    "B",
                    "GET",
                    lambda _b, k=kind, i=rid: f"/{k}/{i}/_history",
                )
            if kind == "Patient":
                add(
                    f"B $everything of {label}",
                    "B",
                    "GET",
                    lambda _b, i=rid: f"/Patient/{i}/$everything",
                )
            if "update" in interactions:
                body = {**without_server_fields(a.content[rid]), "id": rid}
                add(
                    f"B updates {label}",
                    "B",
                    "PUT",
                    lambda _b, k=kind, i=rid: f"/{k}/{i}",
                    body=lambda _b, r=body: r,
                )
                add(
                    f"B updates {label} If-Match 1",
                    "B",
                    "PUT",
                    lambda _b, k=kind, i=rid: f"/{k}/{i}",
                    body=lambda _b, r=body: r,
                    headers={"if-match": 'W/"1"'},
                )
            if "delete" in interactions:
                add(f"B deletes {label}", "B", "DELETE", lambda _b, k=kind, i=rid: f"/{k}/{i}")
        # B's own: read, vread, history (B posts the same cases as A; a type the cases do not
        # hold, such as the worklist's Task, has no own resource to read)
        for n in range(2 if a.of(kind) or kind == "Provenance" else 0):
            add(
                f"B reads its own {kind} #{n}",
                "B",
                "GET",
                lambda b, k=kind, n=n: f"/{k}/{_own(b, k, n)}",
            )
            add(
                f"B vreads its own {kind} #{n}",
                "B",
                "GET",
                lambda b, k=kind, n=n: f"/{k}/{_own(b, k, n)}/_history/1",
            )
            add(
                f"B history of its own {kind} #{n}",
                "B",
                "GET",
                lambda b, k=kind, n=n: f"/{k}/{_own(b, k, n)}/_history",
            )

    from tests.isolation.attempts import b_writes, external  # noqa: PLC0415 - they use Step

    steps += b_writes(a)
    steps += external(a)
    # The system history holds the directory too (readable by every unit): strip A's entries.
    steps.append(Step("B system history", "B", "GET", lambda _b: "/_history", strip=True))
    for pnr, pid in a_patients.items():
        steps.append(
            Step(
                f"B's access log of <A's {pnr}>",
                "B",
                "GET",
                lambda _b, p=pid: q("/AuditEvent", patient=f"Patient/{p}"),
            )
        )
    for event in a_events:
        steps.append(
            Step("B reads <A's AuditEvent>", "B", "GET", lambda _b, e=event: f"/AuditEvent/{e}")
        )
    steps.append(Step("B's access log", "B", "GET", lambda _b: q("/AuditEvent", _count="1000")))
    return steps


def _own(b: Holdings, kind: str, n: int) -> str:
    if kind != "Provenance":
        own = b.of(kind)
        return own[n % len(own)]
    # A Provenance by what it is about (its id is the server's draw): the first two cases'.
    wanted = b.of("Procedure")[:2]
    found = [
        rid
        for target in wanted
        for rid, c in b.content.items()
        if c["resourceType"] == "Provenance" and c["target"][0]["reference"].split("/")[1] == target
    ]
    return found[n % len(found)]


def _key_of(holdings: Holdings, rid: str) -> str:
    return next((v for (_, v), i in holdings.ids.items() if i == rid), "provenance")


def only_mine(answer: Answer, mine: set[str]) -> Answer:
    """A's view of a directory search: only A's entries (every unit's are readable)."""
    import json  # noqa: PLC0415

    body = json.loads(answer.body)
    if body.get("resourceType") != "Bundle":
        return answer
    kept = [e for e in body.get("entry", []) if e.get("resource", {}).get("id") in mine]
    body.pop("total", None)
    if kept:
        body["entry"] = kept
    else:
        body.pop("entry", None)
    return Answer(answer.label, answer.status, answer.headers, json.dumps(body, ensure_ascii=False))
