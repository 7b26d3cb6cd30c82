"""Peers for the delivery tests, each a real process on loopback (see tests/peers/servers.py).

A missing Medplum install fails the tests that need it with the command that fixes it: the
delivery tests are not optional, here or in CI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.peers.servers import Peer, PeerMissingError, fault_target, medplum, require_medplum


@pytest.fixture(scope="module")
def medplum_peer() -> Iterator[Peer]:
    """One Medplum FHIR server (in memory) per test module."""
    try:
        require_medplum()
    except PeerMissingError as exc:
        pytest.fail(f"the Medplum peer is needed here: {exc}", pytrace=False)
    with medplum() as peer:
        yield peer


@pytest.fixture
def fault_peer() -> Iterator[Peer]:
    """A fresh fault-injecting target that fails only when told to (``POST /_fault``)."""
    with fault_target(0.0, seed=1, hang_seconds=1.5, slow_seconds=0.15) as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client
