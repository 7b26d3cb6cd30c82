"""The security tests share one real ``reko-fhir serve`` per module (:mod:`tests.service`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service import ALL, GROWING, STAFF_A, UNIT_A, Service, start_service
from tests.store.conftest import repo  # noqa: F401 - the SQLite/PostgreSQL store fixture

UNIT_B = "SE2321000016-7P1K"
FK = "urn:oid:2.5.4.97|2021005521"
__all__ = ["ALL", "FK", "GROWING", "STAFF_A", "UNIT_A", "UNIT_B", "Service", "start_service"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One server per test module (starting one costs about two seconds)."""
    running = start_service(tmp_path_factory.mktemp("secured") / "data")
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=15)
