"""The router on the in-memory store, as the tests of this folder use it (milliseconds a test)."""

from __future__ import annotations

import pytest

from reko_fhir.store import Partitions
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.validation.service import ValidationService, reko_definitions

UNIT = "SE2321000016-VC01"  # golden case a's care unit


@pytest.fixture(scope="session")
def validation() -> ValidationService:
    return ValidationService(reko_definitions())


@pytest.fixture
def store() -> MemoryRepository:
    """An empty store, seen as ``UNIT``'s."""
    return MemoryRepository(Partitions.of_unit(UNIT))
