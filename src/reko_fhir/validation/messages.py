"""Wording of validation issues so that a person can act on them.

- Values are printed as FHIR JSON (``{"system":"…","code":"GC001"}``), never as Python dicts.
- An invariant whose expression is about one child element only (``code.coding.where(…)``)
  is reported at that child when it is single-valued (``Procedure.code``, not ``Procedure``),
  with the value found there.
- An element a profile prohibits (max 0) says what the profile says of it, and a diagnosis
  (an ICD-10 coding) is called one.
https://hl7.org/fhir/R4/operationoutcome.html (diagnostics, expression)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

# ICD-10 (WHO, HL7's URI) and ICD-10-SE (the Swedish edition's OID).
_DIAGNOSIS_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "urn:oid:1.2.752.116.1.1.1")
_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|`[^`]*`|[A-Za-z_$%][A-Za-z0-9_]*|@[^\s)]*|\S")
_KEYWORDS = frozenset(
    ("and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false")
)
_NAME = re.compile(r"[A-Za-z_]\w*")
_OPEN, _CLOSE = "(", ")"


def json_text(value: Any, limit: int = 160, *, plain: bool = True) -> str:
    """``value`` as a person reads it: a coding as ``system#code``, a CodeableConcept as its
    codings (``plain``), anything else as compact FHIR JSON (a string as it is); shortened
    past ``limit``."""
    if not plain:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict) and isinstance(value.get("coding"), list) and value["coding"]:
        text = ", ".join(json_text(c, limit) for c in value["coding"])
    elif isinstance(value, dict) and set(value) & {"system", "code"} and "value" not in value:
        text = f"{value.get('system', '')}#{value.get('code', '')}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@cache
def focus(expression: str) -> str | None:
    """The one child element every path of ``expression`` starts from, if there is one.

    ``code.coding.where(system = 'x').exists()`` → ``code`` (``system`` is inside where());
    ``code.exists() implies category.exists()`` → None (two elements).
    """
    roots: set[str] = set()
    calls: list[bool] = []  # per open parenthesis: a function call's (its arguments) or not
    tokens = [m.group() for m in _TOKEN.finditer(expression)]
    for index, token in enumerate(tokens):
        before = tokens[index - 1] if index else ""
        after = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token == _OPEN:
            calls.append(bool(_NAME.fullmatch(before)) and before not in _KEYWORDS)
        elif token == _CLOSE:
            if calls:
                calls.pop()
        elif (
            _NAME.fullmatch(token)
            and not any(calls)
            and before != "."
            and after != "("
            and token not in _KEYWORDS
        ):
            roots.add(token)
        elif token.startswith(("%", "$")) and not any(calls):
            return None  # %resource, $this: not about one child
    return roots.pop() if len(roots) == 1 else None


def diagnoses(values: Iterable[Any]) -> list[str]:
    """``system#code`` of each ICD-10 coding found in ``values`` (CodeableConcepts, Codings)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            system = node.get("system")
            if isinstance(system, str) and system.startswith(_DIAGNOSIS_SYSTEMS):
                found.append(f"{system}#{node.get('code')}")
            for item in node.values():
                walk(item)

    walk(list(values))
    return found


def prohibited(found: int, short: object, values: list[Any]) -> str:
    """The message for an element a profile does not allow at all (max 0)."""
    message = f"max allowed = 0, but found {found}"
    codes = diagnoses(values)
    if codes:
        message += f": a diagnosis ({', '.join(codes)}); diagnoses are not to be sent here"
    if isinstance(short, str) and short:
        message += f" (the profile says: {short})"
    return message
