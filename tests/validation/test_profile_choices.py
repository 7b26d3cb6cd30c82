"""Where a definition allows several: type profiles (any one may match), target profiles (any
one; one not loaded makes the check undecided, not passed), type slicing with subtypes."""

from __future__ import annotations

from typing import Any

from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.issue_kinds import is_undecided
from reko_fhir.validation.service import ValidationService
from reko_fhir.validation.validator import Validator

EX = "http://example.org/StructureDefinition/"


def profile(name: str, kind: str, base: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": EX + name,
        "name": name,
        "status": "active",
        "kind": kind,
        "abstract": False,
        "type": base,
        "baseDefinition": CORE_BASE + base,
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def definitions() -> Definitions:
    found = Definitions.core()
    for name, system in (("IdA", "urn:a"), ("IdB", "urn:b")):
        found.add(
            profile(
                name,
                "complex-type",
                "Identifier",
                [{"id": "Identifier.system", "path": "Identifier.system", "fixedUri": system}],
            )
        )
    found.add(
        profile(
            "TwoIds",
            "resource",
            "Patient",
            [
                {
                    "id": "Patient.identifier",
                    "path": "Patient.identifier",
                    "type": [{"code": "Identifier", "profile": [EX + "IdA", EX + "IdB"]}],
                }
            ],
        )
    )
    found.add(
        profile(
            "Targets",
            "resource",
            "Observation",
            [
                {
                    "id": "Observation.subject",
                    "path": "Observation.subject",
                    "type": [
                        {
                            "code": "Reference",
                            "targetProfile": [CORE_BASE + "Group", EX + "NotLoaded"],
                        }
                    ],
                }
            ],
        )
    )
    return found


def errors(issues: list[Any]) -> list[str]:
    return [i.diagnostics for i in issues if i.is_error]


def test_any_one_of_several_type_profiles_may_match() -> None:
    validator = Validator(definitions())
    for system in ("urn:a", "urn:b"):
        patient = {"resourceType": "Patient", "identifier": [{"system": system, "value": "1"}]}
        assert errors(validator.validate(patient, EX + "TwoIds")) == []
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:c", "value": "1"}]}
    (error,) = errors(validator.validate(patient, EX + "TwoIds"))
    assert error.startswith(f"matches none of its profiles ({EX}IdA: value urn:c does not match")


def observation(reference: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": reference},
    }


def test_any_one_target_profile_and_an_unknown_one_is_undecided() -> None:
    validator = Validator(definitions())
    group = validator.validate(observation("Group/1"), EX + "Targets")
    assert errors(group) == []
    assert not [i for i in group if is_undecided(i)]  # a loaded target profile matched
    issues = validator.validate(observation("Device/1"), EX + "Targets")
    assert errors(issues) == []
    (undecided,) = [i for i in issues if is_undecided(i)]
    assert undecided.expression == "Observation.subject"
    assert f"{EX}NotLoaded is not loaded here; the target is a Device" in undecided.diagnostics


def test_a_bundle_reference_is_typed_by_the_entry_it_resolves_to() -> None:
    service = ValidationService(Definitions.core())
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:obs", "resource": observation("urn:uuid:dev")},
            {"fullUrl": "urn:uuid:dev", "resource": {"resourceType": "Device"}},
        ],
    }
    found = [i for i in service.validate(bundle) if i.is_error]
    # Observation.subject may refer to Patient, Group, Device or Location: a Device is fine.
    assert found == []
    bundle["entry"][1]["resource"] = {"resourceType": "Medication"}
    (error,) = [i for i in service.validate(bundle) if i.is_error]
    assert error.expression == "Bundle.entry[0].resource.subject"
    assert error.diagnostics.startswith("a reference to Medication, not to ")


def test_subtypes_count_as_their_base_type() -> None:
    validator = Validator(Definitions.core())
    assert validator._is_a("Patient", "DomainResource")
    assert validator._is_a("Patient", "Resource")
    assert validator._is_a("Age", "Quantity")
    assert not validator._is_a("Patient", "Group")
    assert not validator._is_a("Quantity", "Age")


def test_a_type_discriminator_on_a_choice_element() -> None:
    found = Definitions.core()
    found.add(
        profile(
            "Payloads",
            "resource",
            "Communication",
            [
                {
                    "id": "Communication.payload",
                    "path": "Communication.payload",
                    "slicing": {
                        "discriminator": [{"type": "type", "path": "content"}],
                        "rules": "closed",
                    },
                },
                {
                    "id": "Communication.payload:text",
                    "path": "Communication.payload",
                    "sliceName": "text",
                    "max": "1",
                },
                {
                    "id": "Communication.payload:text.content[x]",
                    "path": "Communication.payload.content[x]",
                    "type": [{"code": "string"}],
                },
            ],
        )
    )
    validator = Validator(found)
    message = {"resourceType": "Communication", "status": "completed"}
    good = {**message, "payload": [{"contentString": "hej"}]}
    assert errors(validator.validate(good, EX + "Payloads")) == []
    bad = {**message, "payload": [{"contentAttachment": {"url": "http://x"}}]}
    (error,) = errors(validator.validate(bad, EX + "Payloads"))
    assert "matches no slice of a closed slicing" in error


def test_the_min_length_extension() -> None:
    found = Definitions.core()
    found.add(
        profile(
            "LongId",
            "resource",
            "Patient",
            [
                {
                    "id": "Patient.id",
                    "path": "Patient.id",
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/minLength",
                            "valueInteger": 5,
                        }
                    ],
                }
            ],
        )
    )
    validator = Validator(found)
    assert (
        errors(validator.validate({"resourceType": "Patient", "id": "abcdef"}, EX + "LongId")) == []
    )
    assert errors(validator.validate({"resourceType": "Patient", "id": "ab"}, EX + "LongId")) == [
        "shorter than the minimum length 5"
    ]


def test_an_additional_required_binding_must_hold() -> None:
    found = Definitions.core()
    found.add(
        {
            "resourceType": "ValueSet",
            "url": "http://example.org/vs/two",
            "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "1-1"}]}]},
        }
    )
    additional = {
        "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
        "extension": [
            {"url": "purpose", "valueCode": "required"},
            {"url": "valueSet", "valueCanonical": "http://example.org/vs/two"},
        ],
    }
    found.add(
        profile(
            "Extra",
            "resource",
            "Observation",
            [
                {
                    "id": "Observation.code",
                    "path": "Observation.code",
                    "binding": {
                        "strength": "example",
                        "valueSet": "http://hl7.org/fhir/ValueSet/observation-codes",
                        "extension": [additional],
                    },
                }
            ],
        )
    )
    validator = Validator(found)
    good = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-1"}]},
    }
    assert errors(validator.validate(good, EX + "Extra")) == []
    bad = {**good, "code": {"coding": [{"system": "http://loinc.org", "code": "2-2"}]}}
    assert errors(validator.validate(bad, EX + "Extra")) == [
        "additional binding (required): http://loinc.org#2-2 is not in the value set"
        " http://example.org/vs/two (required binding)"
    ]
