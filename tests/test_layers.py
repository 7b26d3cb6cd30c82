"""The house's layers, checked on the import statements of src/ (issue 11): dependencies point
inward, so ``rest`` reaches the store only through its interface and knows nothing of security,
and ``security`` and ``delivery`` never reach up into ``rest``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reko_fhir"


def imports_of(package: str) -> dict[str, set[str]]:
    """Every ``reko_fhir`` module each file of ``package`` imports, type-checking ones included."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(SRC))] = {n for n in names if n.startswith("reko_fhir")}
    return found


def test_rest_sees_the_store_only_through_its_interface_and_no_security() -> None:
    wrong = {
        name: sorted(
            module
            for module in modules
            if module.startswith(("reko_fhir.security", "reko_fhir.api", "fastapi"))
            or (
                module.startswith("reko_fhir.store.")
                and not module.startswith("reko_fhir.store.repository")
                and module.count(".") >= 2
                and module.split(".")[2] not in _STORE_INTERFACE_NAMES
            )
        )
        for name, modules in imports_of("rest").items()
    }
    assert {k: v for k, v in wrong.items() if v} == {}


_STORE_INTERFACE_NAMES = {
    # ``from reko_fhir.store import X`` shows up as reko_fhir.store.X: the package's own exports.
    "COUNT_LIMIT", "DATE_PARAMS", "EVERY", "MATCH_LIMIT", "SEARCHABLE", "FhirRepository",
    "FhirSession", "Partitions", "Search", "SqlRepository", "Stored", "gone", "instants",
    "not_found",
}  # fmt: skip


@pytest.mark.parametrize("package", ["security", "delivery", "store", "validation", "domain"])
def test_inner_layers_never_import_rest_or_api(package: str) -> None:
    wrong = {
        name: sorted(m for m in modules if m.startswith(("reko_fhir.rest", "reko_fhir.api")))
        for name, modules in imports_of(package).items()
    }
    assert {k: v for k, v in wrong.items() if v} == {}


@pytest.mark.parametrize(
    "package", ["domain", "mapping", "validation", "store", "security", "delivery", "rest"]
)
def test_no_inner_layer_imports_the_worklist(package: str) -> None:
    """The worklist joins the domain's chaining to the router and the guard (like ``pull``):
    it sits beside the CLI, and nothing below imports it."""
    wrong = {
        name: sorted(m for m in modules if m.startswith(("reko_fhir.worklist", "reko_fhir.cli")))
        for name, modules in imports_of(package).items()
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_worklist_reaches_the_store_only_through_the_router_and_the_guard() -> None:
    """Its writes go through FhirRouter on a GuardedRepository (partitions, Provenance, access
    log): it never touches the SQL store's tables or sessions itself, nor the API."""
    wrong = {
        name: sorted(
            m
            for m in modules
            if m.startswith(("reko_fhir.api", "reko_fhir.store.sql", "reko_fhir.store.unit"))
            or m.startswith("reko_fhir.store.schema")
        )
        for name, modules in imports_of("worklist").items()
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_sick_leave_chaining_is_pure_domain() -> None:
    modules = imports_of("domain")["domain/sjukfall.py"]
    assert all(m.startswith("reko_fhir.domain") for m in modules), modules
