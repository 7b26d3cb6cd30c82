"""What the oracle tests share: every invariant evaluation the validator makes, recorded.

``evaluated`` runs a validation with every invariant going through ``Constraint.verdict``
(element_checks.NATIVE_FIRST off) and returns the evaluations of the constraints ``kept``
(those with a native check, those with a compiled form …), one per (constraint, node,
%resource, %rootResource): test_native_invariants.py and test_fhirpath_compiler.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reko_fhir.validation import element_checks
from reko_fhir.validation.compiled import Constraint

# (constraint, node, %resource, %rootResource, the keyword options verdict() was given)
Evaluation = tuple[Constraint, Any, Any, Any, dict[str, Any]]


def evaluated(
    validate: Callable[[], object],
    monkeypatch: pytest.MonkeyPatch,
    kept: Callable[[Constraint], bool],
) -> list[Evaluation]:
    """Every evaluation ``validate`` makes of a constraint ``kept`` keeps."""
    seen: dict[tuple[int, int, int, int], Evaluation] = {}
    verdict = Constraint.verdict

    def recording(
        self: Constraint, value: Any, resource: Any, root: Any = None, **more: Any
    ) -> Any:
        if kept(self):
            seen[(id(self), id(value), id(resource), id(root))] = (
                self,
                value,
                resource,
                root,
                more,
            )
        return verdict(self, value, resource, root, **more)

    monkeypatch.setattr(Constraint, "verdict", recording)
    monkeypatch.setattr(element_checks, "NATIVE_FIRST", False)  # every one through verdict()
    validate()
    monkeypatch.undo()
    return list(seen.values())
