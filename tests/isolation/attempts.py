"""The requests of the script that write, or come from someone else than unit B's staff:
B's writes about what A holds, the external actor's reads, and unit A's own searches."""

from __future__ import annotations

import copy
from typing import Any

from tests.isolation.compare import DIRECTORY
from tests.isolation.conftest import (
    HSA,
    ONLY_A,
    PNR,
    UNIT_A,
    bare_patient,
    without_server_fields,
)
from tests.isolation.script import CASE_TYPES, PATIENT_DATA, Holdings, Step, q

Json = dict[str, Any]


def b_writes(a: Holdings) -> list[Step]:
    """Writes by B about what A holds: conditional create, update and delete on A's values
    (inside B's own partition), transactions and a batch naming A's ids."""
    pid = a.id("Patient", ONLY_A)
    shared = "197804122385"
    procedure = next(r for r in a.content.values() if r["resourceType"] == "Procedure")
    proc_key = procedure["identifier"][0]
    cond_pnr = f"identifier={PNR}|{ONLY_A}"
    shared_pnr = f"identifier={PNR}|{shared}"

    def b_procedure(b: Holdings, subject: str | None = None) -> Json:
        rid = b.id("Procedure", proc_key["value"])
        mine = without_server_fields(b.content[rid])
        if subject:
            mine["subject"] = {"reference": subject}
        return mine

    renamed = {**bare_patient(ONLY_A, "Bensson")}
    steps = [
        Step(
            "B conditional create of <A's only pnr>",
            "B",
            "POST",
            lambda _b: "/Patient",
            body=lambda _b: bare_patient(ONLY_A),
            headers={"if-none-exist": cond_pnr},
        ),
        Step(
            "B conditional create again",
            "B",
            "POST",
            lambda _b: "/Patient",
            body=lambda _b: bare_patient(ONLY_A),
            headers={"if-none-exist": cond_pnr},
        ),
        Step(
            "B conditional create of a shared pnr",
            "B",
            "POST",
            lambda _b: "/Patient",
            body=lambda _b: bare_patient(shared),
            headers={"if-none-exist": shared_pnr},
        ),
        Step(
            "B conditional update of <A's only pnr>",
            "B",
            "PUT",
            lambda _b: f"/Patient?{cond_pnr}",
            body=lambda _b: renamed,
        ),
        Step(
            "B conditional update of a shared case id",
            "B",
            "PUT",
            lambda _b: q("/Procedure", identifier=f"{proc_key['system']}|{proc_key['value']}"),
            body=b_procedure,
        ),
        Step(
            "B's Procedure about <A's patient>",
            "B",
            "POST",
            lambda _b: "/Procedure",
            body=lambda b: {
                **b_procedure(b, f"Patient/{pid}"),
                "identifier": [{**proc_key, "value": "J-ISO-1"}],
            },
        ),
        Step(
            "B validates a Procedure about <A's patient>",
            "B",
            "POST",
            lambda _b: "/Procedure/$validate",
            body=lambda b: b_procedure(b, f"Patient/{pid}"),
        ),
        Step(
            "B validates its own Procedure",
            "B",
            "POST",
            lambda _b: "/Procedure/$validate",
            body=b_procedure,
        ),
        Step(
            "B transaction: update <A's patient> by id",
            "B",
            "POST",
            lambda _b: "/",
            body=lambda _b: _bundle(
                "transaction", [("PUT", f"Patient/{pid}", {**bare_patient(ONLY_A), "id": pid})]
            ),
        ),
        Step(
            "B transaction: delete <A's patient> by id",
            "B",
            "POST",
            lambda _b: "/",
            body=lambda _b: _bundle("transaction", [("DELETE", f"Patient/{pid}", None)]),
        ),
        Step(
            "B transaction: conditional writes on A's values",
            "B",
            "POST",
            lambda _b: "/",
            body=lambda _b: _bundle(
                "transaction",
                [
                    ("PUT", f"Patient?{cond_pnr}", bare_patient(ONLY_A, "Carlsson")),
                    ("DELETE", "Consent?identifier=SAM-NONE", None),
                    ("POST", "Patient", {**bare_patient(ONLY_A), "_ifNoneExist": cond_pnr}),
                ],
            ),
        ),
        Step(
            "B transaction: conditional delete of <A's only pnr>",
            "B",
            "POST",
            lambda _b: "/",
            body=lambda _b: _bundle("transaction", [("DELETE", f"Patient?{cond_pnr}", None)]),
        ),
        Step(
            "B batch naming A's ids",
            "B",
            "POST",
            lambda _b: "/",
            body=lambda _b: _bundle(
                "batch",
                [
                    ("PUT", f"Patient/{pid}", {**bare_patient(ONLY_A), "id": pid}),
                    ("DELETE", f"Consent/{a.of('Consent')[0]}", None),
                    ("PUT", f"Patient?{cond_pnr}", bare_patient(ONLY_A, "Davidsson")),
                    ("PUT", f"Patient?{shared_pnr}", bare_patient(shared, "Lindqvist")),
                ],
            ),
        ),
        Step(
            "B conditional create of <A's only pnr> after the delete",
            "B",
            "POST",
            lambda _b: "/Patient",
            body=lambda _b: bare_patient(ONLY_A),
            headers={"if-none-exist": cond_pnr},
        ),
    ]
    # A care unit's token naming another unit in the header a platform token uses: ignored.
    as_a = {"x-reko-care-unit": UNIT_A}
    steps += [
        Step("B names A's unit: search", "B", "GET", lambda _b: q("/Patient"), headers=as_a),
        Step("B names A's unit: read", "B", "GET", lambda _b: f"/Patient/{pid}", headers=as_a),
        Step(
            "B names A's unit: conditional create",
            "B",
            "POST",
            lambda _b: "/Patient",
            body=lambda _b: bare_patient(ONLY_A),
            headers={"if-none-exist": cond_pnr, **as_a},
        ),
        Step(
            "B names A's unit: update",
            "B",
            "PUT",
            lambda _b: f"/Patient/{pid}",
            body=lambda _b: {**bare_patient(ONLY_A), "id": pid},
            headers=as_a,
        ),
    ]
    # B's own EpisodeOfCare naming A's patients by id (a guessed or leaked id): B may write
    # it, but no search of B's may then tell what A's patient is (chained by personnummer).
    episode = a.content[a.of("EpisodeOfCare")[0]]["identifier"][0]

    def b_episode(b: Holdings, value: str, patient: str) -> Json:
        mine = without_server_fields(b.content[b.id("EpisodeOfCare", episode["value"])])
        return {
            **mine,
            "identifier": [{**episode, "value": value}],
            "patient": {"reference": patient},
        }

    for n, pnr in enumerate((ONLY_A, shared), start=1):
        target = f"Patient/{a.id('Patient', pnr)}"
        steps.append(
            Step(
                f"B's EpisodeOfCare about <A's {pnr}>",
                "B",
                "POST",
                lambda _b: "/EpisodeOfCare",
                body=lambda b, v=f"REKO-ISO-{n}", t=target: b_episode(b, v, t),
            )
        )
    for pnr in (ONLY_A, shared):
        for name in ("patient.identifier", "patient.identifier:missing"):
            steps.append(
                Step(
                    f"B chains EpisodeOfCare?{name}={pnr}",
                    "B",
                    "GET",
                    lambda _b, n=name, v=pnr: q("/EpisodeOfCare", **{n: v}),
                )
            )
        steps.append(
            Step(
                f"B chains EpisodeOfCare by {PNR}|{pnr}",
                "B",
                "GET",
                lambda _b, v=pnr: q("/EpisodeOfCare", **{"patient.identifier": f"{PNR}|{v}"}),
            )
        )
        steps.append(
            Step(
                f"B chains Procedure by {pnr}",
                "B",
                "GET",
                lambda _b, v=pnr: q("/Procedure", **{"subject.identifier": v}),
            )
        )
    for n in (1, 2):
        steps.append(
            Step(
                f"B includes the patient of REKO-ISO-{n}",
                "B",
                "GET",
                lambda _b, v=f"REKO-ISO-{n}": q(
                    "/EpisodeOfCare", identifier=v, _include="EpisodeOfCare:patient"
                ),
            )
        )
    steps.append(
        Step(
            "B deletes its own REKO-ISO-1",
            "B",
            "DELETE",
            lambda b: f"/EpisodeOfCare/{_found(b, 'EpisodeOfCare', 'REKO-ISO-1')}",
        )
    )
    for kind in DIRECTORY:
        for rid in a.of(kind)[:2]:
            body = {**without_server_fields(a.content[rid]), "id": rid}
            steps.append(
                Step(
                    f"B updates <A's {kind}>",
                    "B",
                    "PUT",
                    lambda _b, k=kind, i=rid: f"/{k}/{i}",
                    body=lambda _b, r=body: r,
                )
            )
            steps.append(
                Step(
                    f"B deletes <A's {kind}>", "B", "DELETE", lambda _b, k=kind, i=rid: f"/{k}/{i}"
                )
            )
    role = next(r for r in a.content.values() if r["resourceType"] == "PractitionerRole")
    steps.append(
        Step(
            "B conditional update of a shared staff HSA-id",
            "B",
            "PUT",
            lambda _b: q("/PractitionerRole", identifier=f"{HSA}|{role['identifier'][0]['value']}"),
            body=lambda b: _own_role(b, role),
        )
    )
    return steps


def _found(b: Holdings, kind: str, value: str) -> str:
    """The id of a resource the script created (looked up when the step runs)."""
    return b.ids.get((kind, value), "unknown")


def _own_role(b: Holdings, role: Json) -> Json:
    return without_server_fields(
        b.content[b.id("PractitionerRole", role["identifier"][0]["value"])]
    )


def _bundle(kind: str, entries: list[tuple[str, str, Json | None]]) -> Json:
    built = []
    for method, url, resource in entries:
        request: Json = {"method": method, "url": url}
        entry: Json = {"request": request}
        if resource is not None:
            sent = copy.deepcopy(resource)
            if "_ifNoneExist" in sent:
                request["ifNoneExist"] = sent.pop("_ifNoneExist")
            entry["resource"] = sent
        built.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": built}


def external(a: Holdings) -> list[Step]:
    """An external actor (Försäkringskassan): its notices of B only, nothing of A's."""
    steps = [
        Step("FK searches notices", "external", "GET", lambda _b: "/Communication"),
        Step(
            "FK counts notices",
            "external",
            "GET",
            lambda _b: q("/Communication", _summary="count"),
        ),
        Step(
            "FK searches a case id",
            "external",
            "GET",
            lambda _b: q("/Communication", identifier="FKM-0117-1"),
        ),
        Step(
            "FK reads B's notice",
            "external",
            "GET",
            lambda b: f"/Communication/{b.of('Communication')[0]}",
        ),
    ]
    for rid in a.of("Communication"):
        steps += [
            Step(
                "FK reads <A's notice>", "external", "GET", lambda _b, i=rid: f"/Communication/{i}"
            ),
            Step(
                "FK vreads <A's notice>",
                "external",
                "GET",
                lambda _b, i=rid: f"/Communication/{i}/_history/1",
            ),
            Step(
                "FK searches <A's notice> by _id",
                "external",
                "GET",
                lambda _b, i=rid: q("/Communication", _id=i),
            ),
        ]
    for pnr in a.keys("Patient"):
        pid = a.id("Patient", pnr)
        steps += [
            Step(
                f"FK searches notices of <A's {pnr}>",
                "external",
                "GET",
                lambda _b, p=pid: q("/Communication", subject=f"Patient/{p}"),
            ),
            Step(
                f"FK reads <A's Patient {pnr}>",
                "external",
                "GET",
                lambda _b, p=pid: f"/Patient/{p}",
            ),
            Step(
                f"FK chains notices of {pnr}",
                "external",
                "GET",
                lambda _b, v=pnr: q("/Communication", **{"subject.identifier": v}),
            ),
        ]
    for org in a.of("Organization"):
        steps.append(
            Step(
                "FK searches notices to <A's organisation>",
                "external",
                "GET",
                lambda _b, o=org: q("/Communication", recipient=f"Organization/{o}"),
            )
        )
    return steps


def a_searches(a: Holdings) -> list[Step]:
    """Unit A's own view of its data: every search of its patient data, its patients'
    $everything and histories; its directory searches (B's entries are there by design)."""
    steps = []
    for kind in (*PATIENT_DATA, *DIRECTORY):
        steps.append(
            Step(f"A searches {kind}", "A", "GET", lambda _b, k=kind: q(f"/{k}", _count="1000"))
        )
        steps.append(
            Step(f"A's history of {kind}", "A", "GET", lambda _b, k=kind: f"/{k}/_history")
        )
        for value in a.keys(kind):
            steps.append(
                Step(
                    f"A searches {kind}?identifier={value}",
                    "A",
                    "GET",
                    lambda _b, k=kind, v=value: q(f"/{k}", identifier=v),
                )
            )
    for pnr in a.keys("Patient"):
        pid = a.id("Patient", pnr)
        steps.append(
            Step(f"A $everything {pnr}", "A", "GET", lambda _b, p=pid: f"/Patient/{p}/$everything")
        )
        for kind in CASE_TYPES:
            element = "patient" if kind in ("EpisodeOfCare", "Consent") else "subject"
            steps.append(
                Step(
                    f"A searches {kind} of {pnr}",
                    "A",
                    "GET",
                    lambda _b, k=kind, e=element, p=pid: q(
                        f"/{k}", **{e: f"Patient/{p}"}, _total="accurate"
                    ),
                )
            )
            steps.append(
                Step(
                    f"A chains {kind} of {pnr}",
                    "A",
                    "GET",
                    lambda _b, k=kind, e=element, v=pnr: q(f"/{k}", **{f"{e}.identifier": v}),
                )
            )
    return steps
