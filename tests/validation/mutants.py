"""Seeded mutants of the repository's fixtures: wrong JSON types, unknown and ``_x`` keys,
extensions, codings, contained resources — what a careless or hostile client may send.

Deterministic: the same seed gives the same mutants, so a failure names a mutant that can be
made again (``mutants(seed)[i]``).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.golden import fhir_fixtures

_EXTERNAL_ACTOR = "http://reko-fhir.se/fhir/StructureDefinition/external-actor"
_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
EXTENSIONS: list[Any] = [
    {"url": _EXTERNAL_ACTOR, "valueString": "x"},
    {"url": _EXTERNAL_ACTOR, "valueReference": {"reference": 5}},
    {"url": _EXTERNAL_ACTOR},
    {"url": "http://example.org/unknown", "valueString": "x"},
    {"url": _ABSENT, "valueCode": "unknown"},
    {"url": _ABSENT, "valueCode": 3},
    {"url": "rel", "valueString": "x"},
    {"valueString": "x"},
    {"url": 7, "valueString": "x"},
    {"url": ["a"], "valueString": "x"},
    {
        "url": _EXTERNAL_ACTOR,
        "valueReference": {"reference": "Organization/1"},
        "extension": [{"url": "a", "valueString": "b"}],
    },
    {"url": _EXTERNAL_ACTOR, "valueReference": {}, "id": 4},
    {"url": _EXTERNAL_ACTOR, "valueReference": {"reference": "Organization/1", "foo": 1}},
    "not an extension",
]
CODINGS: list[Any] = [
    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32"},
    {"system": "http://hl7.org/fhir/sid/icd-10", "code": ["F32"]},
    {"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "XX999"},
    {"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": {"x": 1}},
    {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "191212121213"},
    {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "19121212121"},
    {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": ["191212121212"]},
    {"system": 5, "code": "x"},
    {"system": ["http://hl7.org/fhir/sid/icd-10"], "code": "F32"},
    "not a coding",
]
VALUES: list[Any] = [
    None,
    1,
    1.5,
    True,
    "",
    "x",
    "2024-13-01",
    [],
    [None],
    {},
    {"foo": 1},
    [1, "a"],
    [{"a": 1}],
    "urn:uuid:x",
    {"reference": "Patient/1"},
    {"reference": ["Patient/1"]},
]


def _nodes(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)


def _mutate_list(node: list[Any], op: int, rng: random.Random) -> None:
    if not node:
        node.append(copy.deepcopy(rng.choice(VALUES)))
    elif op < 3:
        node.append(copy.deepcopy(rng.choice(node)))
    elif op < 6:
        node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(VALUES))
    else:
        node.pop(rng.randrange(len(node)))


def _mutate_object(node: dict[str, Any], op: int, rng: random.Random, pool: list[Any]) -> None:
    keys = [k for k in node if k != "resourceType"]
    if op == 0 and keys:
        del node[rng.choice(keys)]
    elif op in (1, 9) and keys:
        node[rng.choice(keys)] = copy.deepcopy(rng.choice(VALUES))
    elif op == 2:
        key = rng.choice(["foo", "extension", "modifierExtension", "id", "meta", "text"])
        node[key] = copy.deepcopy(rng.choice(VALUES))
    elif op == 3:
        extensions = node.setdefault("extension", [])
        if isinstance(extensions, list):
            extensions.append(copy.deepcopy(rng.choice(EXTENSIONS)))
    elif op == 4 and keys:
        shadow = rng.choice(
            [{"extension": [copy.deepcopy(rng.choice(EXTENSIONS))]}, {"id": "a"}, 3, [None], {}]
        )
        node["_" + rng.choice(keys)] = shadow
    elif op == 5:
        codings = node.setdefault("coding", [])
        if isinstance(codings, list):
            codings.append(copy.deepcopy(rng.choice(CODINGS)))
    elif op == 6:
        coding = rng.choice(CODINGS)
        if isinstance(coding, dict):
            node.update(copy.deepcopy(coding))
    elif op == 7 and keys:
        key = rng.choice(keys)
        if not isinstance(node[key], list):
            node[key] = [node[key]]
        elif len(node[key]) == 1:
            node[key] = node[key][0]
    elif op == 8 and pool:
        node["contained"] = [copy.deepcopy(rng.choice(pool))]


def mutate(resource: Any, rng: random.Random, pool: list[Any]) -> Any:
    """A copy of ``resource`` with one to three random changes (``pool``: contained ones)."""
    mutant = copy.deepcopy(resource)
    for _ in range(rng.randint(1, 3)):
        node = rng.choice([n for n in _nodes(mutant) if isinstance(n, (dict, list))])
        op = rng.randrange(10)
        if isinstance(node, list):
            _mutate_list(node, op, rng)
        else:
            _mutate_object(node, op, rng, pool)
    return mutant


def mutants(seed: int, per_resource: int = 6) -> list[tuple[str, Any]]:
    """``per_resource`` mutants of each fixture resource (one of each Bundle: they are big)."""
    rng = random.Random(seed)
    resources = [(name, r) for name, r in fhir_fixtures() if isinstance(r, dict)]
    pool = [r for _, r in resources if r.get("resourceType") != "Bundle"]
    made: list[tuple[str, Any]] = []
    for name, resource in resources:
        count = per_resource if resource.get("resourceType") != "Bundle" else 1
        for n in range(count):
            made.append((f"{name}:{n}", mutate(resource, rng, pool)))
    return made


def conformance_instances(root: Path) -> list[tuple[str, Any]]:
    """The JSON instances of the vendored HL7 cases (for mutating with the core definitions)."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
        if case["instance"].endswith(".json"):
            found.append((folder.name, json.loads((folder / case["instance"]).read_bytes())))
    return found
