"""A primitive's id and extensions in FHIR JSON (``_x``): walked and checked like any element's.

https://hl7.org/fhir/R4/json.html#primitive
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from reko_fhir.validation.datatypes import EXT_1
from reko_fhir.validation.validator import Validator
from reko_fhir.validation.xmljson import core_reader

TEXT = "http://example.org/fhir/StructureDefinition/text"


@cache
def _validator() -> Validator:
    return Validator()


def _errors(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.diagnostics, i.expression) for i in _validator().validate(resource) if i.is_error]


def _patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def _ext(**value: Any) -> dict[str, Any]:
    return {"url": TEXT, **value}


def test_a_valid_birth_date_extension_passes() -> None:
    patient = _patient(
        birthDate="1970-03-30",
        _birthDate={"id": "314159", "extension": [_ext(valueString="Easter 1970")]},
    )
    assert _errors(patient) == []


@pytest.mark.parametrize(
    "extension",
    [
        _ext(),  # neither value nor extensions
        _ext(valueString="a", extension=[_ext(valueString="b")]),  # both
    ],
)
def test_ext_1_on_a_primitive_s_extension(extension: dict[str, Any]) -> None:
    patient = _patient(birthDate="1970-03-30", _birthDate={"extension": [extension]})
    assert (EXT_1, "Patient.birthDate.extension[0]") in _errors(patient)


def test_ext_1_on_an_item_of_a_repeating_primitive() -> None:
    name = {"given": ["a", "b"], "_given": [None, {"extension": [_ext()]}]}
    assert _errors(_patient(name=[name])) == [(EXT_1, "Patient.name[0].given[1].extension[0]")]


def test_an_extension_value_of_the_wrong_type_fails() -> None:
    patient = _patient(birthDate="1970-03-30", _birthDate={"extension": [_ext(valueString=1)]})
    assert _errors(patient) == [
        ("a string is a JSON string", "Patient.birthDate.extension[0].valueString")
    ]


@pytest.mark.parametrize("url", ["text", 7])
def test_a_bad_url_fails(url: Any) -> None:
    patient = _patient(
        birthDate="1970-03-30", _birthDate={"extension": [{"url": url, "valueString": "a"}]}
    )
    assert any(where.startswith("Patient.birthDate.extension[0]") for _, where in _errors(patient))


def test_unknown_elements_inside_a_primitive_s_extension_fail() -> None:
    patient = _patient(
        birthDate="1970-03-30", _birthDate={"extension": [_ext(valueString="a", foo=1)]}
    )
    assert ("unknown element 'foo'", "Patient.birthDate.extension[0].foo") in _errors(patient)


def test_aligned_arrays_with_nulls_pass() -> None:
    name = {
        "given": ["a", "b", None],
        "_given": [None, {"id": "g2"}, {"extension": [_ext(valueString="c")]}],
    }
    assert _errors(_patient(name=[name])) == []


def test_a_value_less_primitive_with_an_extension_counts_as_present() -> None:
    # Only the extension stands for the element (e.g. a data-absent-reason).
    assert _errors(_patient(_birthDate={"extension": [_ext(valueString="unknown")]})) == []


def test_misaligned_arrays_fail() -> None:
    name = {"given": ["a", "b"], "_given": [None]}
    errors = _errors(_patient(name=[name]))
    assert [where for _, where in errors] == ["Patient.name[0]._given"]


@pytest.mark.parametrize(
    ("elements", "where"),
    [
        ({"birthDate": "1970-03-30", "_birthDate": "x"}, "Patient._birthDate"),
        ({"birthDate": "1970-03-30", "_birthDate": [{"id": "a"}]}, "Patient._birthDate"),
        ({"name": [{"given": ["a"], "_given": {"id": "a"}}]}, "Patient.name[0]._given"),
        ({"name": [{"given": ["a"], "_given": ["x"]}]}, "Patient.name[0]._given"),
        ({"_name": {"id": "a"}}, "Patient._name"),  # a HumanName is no primitive
        ({"_colour": {"id": "a"}}, "Patient._colour"),  # no such element
    ],
)
def test_wrong_shapes_fail(elements: dict[str, Any], where: str) -> None:
    assert where in [w for _, w in _errors(_patient(**elements))]


def test_unknown_keys_fail() -> None:
    patient = _patient(birthDate="1970-03-30", _birthDate={"id": "a", "value": "x"})
    assert [w for _, w in _errors(patient)] == ["Patient.birthDate.value"]


@pytest.mark.parametrize(
    "elements",
    [
        {"_birthDate": {"id": "a"}},
        {"_birthDate": {"extension": []}},
        {"name": [{"given": [None], "_given": [None]}]},
        {"name": [{"given": [None], "_given": [{"id": "a"}]}]},
        {"name": [{"_given": [{"id": "a"}]}]},
    ],
)
def test_neither_value_nor_extension_fails(elements: dict[str, Any]) -> None:
    assert _errors(_patient(**elements))


XML = b"""<Patient xmlns="http://hl7.org/fhir">
  <name>
    <given value="a"/>
    <given id="g2"><extension url="%s"><valueString value="%s"/></extension></given>
  </name>
  <birthDate value="1970-03-30">
    <extension url="%s">%s</extension>
  </birthDate>
</Patient>"""


def test_xml_primitive_extensions_take_the_json_shape_and_are_checked() -> None:
    good = XML % (TEXT.encode(), b"b", TEXT.encode(), b'<valueString value="Easter 1970"/>')
    patient = core_reader().read(good)
    assert patient["_birthDate"] == {"extension": [_ext(valueString="Easter 1970")]}
    assert patient["name"][0]["_given"] == [
        None,
        {"id": "g2", "extension": [_ext(valueString="b")]},
    ]
    assert _errors(patient) == []

    bad = XML % (TEXT.encode(), b"b", TEXT.encode(), b"")  # ext-1: neither value nor extensions
    assert _errors(core_reader().read(bad)) == [(EXT_1, "Patient.birthDate.extension[0]")]


def test_an_xml_primitive_with_only_an_extension_passes() -> None:
    data = (
        b'<Patient xmlns="http://hl7.org/fhir"><name><given><extension url="'
        + TEXT.encode()
        + b'"><valueString value="x"/></extension></given></name></Patient>'
    )
    patient = core_reader().read(data)
    assert patient["name"][0] == {
        "given": [None],
        "_given": [{"extension": [_ext(valueString="x")]}],
    }
    assert _errors(patient) == []
