"""Domain → FHIR → domain is lossless: in memory, through FHIR JSON and through FHIR XML."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from reko_fhir.domain import CoordinationCase
from reko_fhir.formats import dump_json, dump_xml, parse_json, parse_xml
from reko_fhir.mapping import bundle_to_case, case_to_bundle, case_to_bundle_json
from tests.strategies import cases

ROUND_TRIPS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@ROUND_TRIPS
@given(cases())
def test_a_case_survives_the_round_trip(case: CoordinationCase) -> None:
    assert bundle_to_case(case_to_bundle(case)) == case


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_case_survives_fhir_json_and_xml_bytes(case: CoordinationCase) -> None:
    bundle = case_to_bundle(case)
    assert bundle_to_case(parse_json(dump_json(bundle))) == case
    assert bundle_to_case(parse_xml(dump_xml(bundle))) == case


@settings(max_examples=60, deadline=None)
@given(cases())
def test_mapping_is_deterministic_and_ids_follow_the_sources(case: CoordinationCase) -> None:
    first, second = case_to_bundle_json(case), case_to_bundle_json(case)
    assert json.dumps(first) == json.dumps(second)
    urls = [e["fullUrl"] for e in first["entry"]]
    assert len(urls) == len(set(urls)), "every resource has its own fullUrl"
    conditional = [e["request"]["url"] for e in first["entry"]]
    assert len(conditional) == len(set(conditional)), "every entry has its own conditional URL"
    assert all("id" not in e["resource"] for e in first["entry"])
