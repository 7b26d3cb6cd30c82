"""The worklist runs on every store implementation (the fixture of tests/store)."""

from tests.store.conftest import store

__all__ = ["store"]
