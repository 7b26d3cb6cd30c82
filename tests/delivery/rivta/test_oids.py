"""OID roots <-> FHIR identifier systems, both ways."""

from __future__ import annotations

import pytest

from reko_fhir.delivery.rivta.oids import (
    HSA_ROOT,
    PERSONNUMMER_ROOT,
    SAMORDNINGSNUMMER_ROOT,
    UnknownSystemError,
    fhir_system,
    is_oid,
    oid_root,
    patient_kind,
    patient_root,
)
from reko_fhir.domain import PatientId, PatientIdKind
from reko_fhir.mapping import codings


@pytest.mark.parametrize(
    ("root", "system"),
    [
        ("1.2.752.129.2.1.3.1", codings.PERSONNUMMER),
        ("1.2.752.129.2.1.3.3", codings.SAMORDNINGSNUMMER),
        ("1.2.752.129.2.1.4.1", codings.HSA),
    ],
)
def test_known_roots_map_to_the_project_systems_and_back(root: str, system: str) -> None:
    assert fhir_system(root) == system
    assert oid_root(system) == root


def test_an_unknown_oid_travels_as_urn_oid_both_ways() -> None:
    assert fhir_system("1.2.752.29.4.71") == "urn:oid:1.2.752.29.4.71"
    assert oid_root("urn:oid:1.2.752.29.4.71") == "1.2.752.29.4.71"
    assert oid_root(codings.ORG_NUMBER) == "2.5.4.97"


def test_the_rivta_hsa_urn_is_accepted_on_input() -> None:
    assert oid_root(codings.HSA_RIVTA) == HSA_ROOT
    # ... but the project writes the HL7 Sweden HSA system.
    assert fhir_system(oid_root(codings.HSA_RIVTA)) == codings.HSA


@pytest.mark.parametrize("root", ["", "1.2.752.", "3.1.2", "1.02.3", "1", "urn:oid:1.2", "1.2 "])
def test_a_root_that_is_no_oid_is_refused(root: str) -> None:
    assert not is_oid(root)
    with pytest.raises(ValueError, match="not an OID"):
        fhir_system(root)


@pytest.mark.parametrize(
    "system", ["http://example.org/ids", "urn:oid:", "urn:oid:1.2.x", "urn:uuid:1234"]
)
def test_a_system_without_oid_has_no_root(system: str) -> None:
    with pytest.raises(UnknownSystemError):
        oid_root(system)


def test_patient_roots_follow_the_kind_of_number() -> None:
    assert patient_root(PatientId("191212121212")) == PERSONNUMMER_ROOT
    assert patient_root(PatientId("198503722384")) == SAMORDNINGSNUMMER_ROOT
    assert patient_kind(PERSONNUMMER_ROOT) is PatientIdKind.PERSONNUMMER
    assert patient_kind(SAMORDNINGSNUMMER_ROOT) is PatientIdKind.SAMORDNINGSNUMMER
    assert patient_kind(HSA_ROOT) is None
