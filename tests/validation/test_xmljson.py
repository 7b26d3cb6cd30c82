"""The definition-driven FHIR XML reader agrees with fhir.resources where both can read."""

from __future__ import annotations

import json

import pytest

from reko_fhir.validation.xmljson import core_reader
from reko_fhir.xmlsafe import UnsafeXmlError
from tests.golden import FIXTURES


@pytest.mark.parametrize("case", sorted(p.name for p in (FIXTURES / "mapping").iterdir()))
def test_golden_xml_reads_as_the_golden_json(case: str) -> None:
    folder = FIXTURES / "mapping" / case
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert core_reader().read((folder / "expected.xml").read_bytes()) == expected


def test_invalid_resources_are_read_not_refused() -> None:
    """A model parser refuses these; a validator must read them to report on them."""
    data = (
        b'<Patient xmlns="http://hl7.org/fhir"><active value="maybe"/><birthDate value="1990-02-30"/>'
        b'<shoeSize value="44"/><name><given value="Anna"/><given value="Maria"/></name>'
        b'<gender value="female"><extension url="http://x/e"><valueString value="x"/></extension></gender></Patient>'
    )
    assert core_reader().read(data) == {
        "resourceType": "Patient",
        "active": "maybe",
        "birthDate": "1990-02-30",
        "shoeSize": ["44"],  # unknown: kept (as a list, since nothing says it is single)
        "name": [{"given": ["Anna", "Maria"]}],
        "gender": "female",
        "_gender": {"extension": [{"url": "http://x/e", "valueString": "x"}]},
    }


def test_numbers_booleans_and_narrative_take_their_json_form() -> None:
    data = (
        b'<Observation xmlns="http://hl7.org/fhir"><text><status value="generated"/>'
        b'<div xmlns="http://www.w3.org/1999/xhtml">Vikt <b>72</b></div></text>'
        b'<valueQuantity><value value="72.5"/></valueQuantity>'
        b'<component><valueBoolean value="true"/></component><component><valueInteger value="3"/></component>'
        b"</Observation>"
    )
    read = core_reader().read(data)
    assert read["valueQuantity"] == {"value": 72.5}
    assert [c for c in read["component"]] == [{"valueBoolean": True}, {"valueInteger": 3}]
    assert read["text"]["div"] == '<div xmlns="http://www.w3.org/1999/xhtml">Vikt <b>72</b></div>'


def test_entities_are_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        core_reader().read(b'<!DOCTYPE x [<!ENTITY e "e">]><Patient xmlns="http://hl7.org/fhir"/>')
