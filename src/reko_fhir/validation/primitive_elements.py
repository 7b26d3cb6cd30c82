"""The Element part of a primitive in FHIR JSON: its ``_x`` sibling (id and extensions).

A primitive's value stands under ``x``; its ``id`` and ``extension`` under ``_x``, an object
(for a repeating primitive, an array aligned with ``x``, null where an item has neither)
(https://hl7.org/fhir/R4/json.html#primitive). The walker hands every ``_x`` of a node here:
its shape is checked, then it is walked as the primitive's element, against the element's
rule overlaid on the primitive type's (``date.id``, ``date.extension``), so that its
extensions get the checks any extension gets (ext-1, known extension, profile, context,
unknown elements), at the primitive's path (``Patient.birthDate.extension[0]``). An item
with neither value nor extension is not allowed (a primitive has a value or extensions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reko_fhir.outcomes import IssueCode, IssueSeverity
from reko_fhir.validation.compiled import Rule
from reko_fhir.validation.layout import single_type
from reko_fhir.validation.primitives import is_primitive

if TYPE_CHECKING:
    from reko_fhir.validation.element_checks import Run
    from reko_fhir.validation.validator import Validator

Json = dict[str, Any]
_ERROR = IssueSeverity.ERROR
_PARTS = ("id", "extension")
_NEITHER = "a primitive must have a value or extensions"


def primitive_elements(
    validator: Validator, run: Run, node: Json, children: dict[str, Rule], where: str
) -> dict[str, list[str]]:
    """Checks every ``_x`` of ``node``; returns, by element name, the paths of the items that
    stand only through their extensions (no value), which count for cardinality."""
    carried: dict[str, list[str]] = {}
    for key, shadow in node.items():
        if not key.startswith("_") or len(key) < 2:
            continue
        name = key[1:]
        child, choice = validator.plans.child(children, name)
        if child is None:
            run.add(_ERROR, IssueCode.STRUCTURE, f"unknown element '{key}'", f"{where}.{key}")
            continue
        type_code = choice or single_type(child)
        if not is_primitive(type_code):
            message = f"'{key}' stands only beside a primitive, and {name} is a {type_code}"
            run.add(_ERROR, IssueCode.STRUCTURE, message, f"{where}.{key}")
            continue
        value = node.get(name)
        repeats = isinstance(value, list) or (
            value is None and (child.max is None or child.max > 1)
        )
        if not repeats:
            if not isinstance(shadow, dict):
                message = f"'{key}' must be a JSON object (the id and extensions of {name})"
                run.add(_ERROR, IssueCode.STRUCTURE, message, f"{where}.{key}")
            elif _element(
                validator,
                run,
                child,
                type_code,
                value=value,
                shadow=shadow,
                where=f"{where}.{name}",
            ):
                carried.setdefault(child.name, []).append(f"{where}.{name}")
            continue
        values = value if isinstance(value, list) else [None] * len(shadow or [])
        if not isinstance(shadow, list) or not all(
            item is None or isinstance(item, dict) for item in shadow
        ):
            message = f"'{key}' must be an array of objects or nulls, aligned with {name}"
            run.add(_ERROR, IssueCode.STRUCTURE, message, f"{where}.{key}")
            continue
        if len(shadow) != len(values):
            message = (
                f"'{key}' has {len(shadow)} items, but {name} has {len(values)}:"
                " they must be aligned"
            )
            run.add(_ERROR, IssueCode.STRUCTURE, message, f"{where}.{key}")
            continue
        for index, (item, part) in enumerate(zip(values, shadow, strict=True)):
            path = f"{where}.{name}[{index}]"
            if part is None:
                if item is None:
                    run.add(_ERROR, IssueCode.STRUCTURE, _NEITHER, path)
            elif _element(validator, run, child, type_code, value=item, shadow=part, where=path):
                carried.setdefault(child.name, []).append(path)
    return carried


def _element(
    validator: Validator,
    run: Run,
    rule: Rule,
    type_code: str,
    *,
    value: Any,
    shadow: Json,
    where: str,
) -> bool:
    """Walks one primitive's element part; True when it stands without a value."""
    for key in shadow:
        if key not in _PARTS and key != "fhir_comments":
            message = f"unknown element '{key}' (a primitive's '_' object has only id, extension)"
            run.add(_ERROR, IssueCode.STRUCTURE, message, f"{where}.{key}")
    if value is None and not shadow.get("extension"):
        run.add(_ERROR, IssueCode.STRUCTURE, _NEITHER, where)
        return False
    extensions = shadow.get("extension")
    for index, extension in enumerate(extensions if isinstance(extensions, list) else []):
        url = extension.get("url") if isinstance(extension, dict) else None
        if isinstance(url, str) and ":" not in url:
            message = f"the url of an extension on a primitive must be absolute, not '{url}'"
            run.add(_ERROR, IssueCode.VALUE, message, f"{where}.extension[{index}].url")
    element = {key: shadow[key] for key in _PARTS if key in shadow}
    validator._node(run, element, rule, where, type_code)
    return value is None
