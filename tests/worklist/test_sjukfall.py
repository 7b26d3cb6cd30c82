"""Chaining certificates into sick leaves as Rehabstöd does (maxAntalDagarMellanIntyg)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from reko_fhir.delivery.rivta.sick_leaves import ActiveSickLeave
from reko_fhir.domain import DomainError, RekoStatus, SickLeavePeriod
from reko_fhir.domain.codes import REHABSTOD_IDS
from reko_fhir.domain.sjukfall import Certificate, chain_sjukfall
from reko_fhir.package_data import PROFILES_DIR
from tests.worklist.certificates import (
    DOCTOR,
    OTHER_UNIT,
    TODAY,
    UNIT,
    certificate,
    patient,
)

P1, P2 = patient(1), patient(2)
JAN = date(2026, 1, 1)


def after(first_end: date, days_between: int) -> date:
    """The start that leaves ``days_between`` days between ``first_end`` and it."""
    return first_end + timedelta(days=days_between + 1)


def test_an_active_sick_leave_of_the_rivta_client_is_a_certificate() -> None:
    record: Certificate = certificate("a", P1, JAN, date(2026, 1, 10))
    assert isinstance(record, ActiveSickLeave)
    assert chain_sjukfall([record], today=TODAY)[0].certificate_ids == ("a",)


@pytest.mark.parametrize(("between", "chained"), [(0, True), (4, True), (5, True), (6, False)])
def test_certificates_chain_when_at_most_n_days_lie_between(between: int, chained: bool) -> None:
    first = certificate("a", P1, JAN, date(2026, 1, 10))
    second = certificate("b", P1, after(date(2026, 1, 10), between), date(2026, 2, 28))
    found = chain_sjukfall([second, first], today=TODAY)
    if chained:
        assert [(s.start, s.end, s.certificate_ids) for s in found] == [
            (JAN, date(2026, 2, 28), ("a", "b"))
        ]
        # The days on sick leave, the gap not counted.
        assert (
            found[0].length_days
            == 10 + (date(2026, 2, 28) - after(date(2026, 1, 10), between)).days + 1
        )
    else:
        assert [(s.start, s.certificate_ids) for s in found] == [
            (JAN, ("a",)),
            (after(date(2026, 1, 10), between), ("b",)),
        ]


def test_the_setting_moves_the_limit() -> None:
    first = certificate("a", P1, JAN, date(2026, 1, 10))
    second = certificate("b", P1, after(date(2026, 1, 10), 30), date(2026, 3, 31))
    assert len(chain_sjukfall([first, second], today=TODAY)) == 2
    assert len(chain_sjukfall([first, second], max_days_between=30, today=TODAY)) == 1
    assert len(chain_sjukfall([first, second], max_days_between=29, today=TODAY)) == 2
    # 0: only certificates that meet or overlap chain.
    touching = certificate("c", P1, date(2026, 1, 11), date(2026, 1, 20))
    assert len(chain_sjukfall([first, touching], max_days_between=0, today=TODAY)) == 1


@pytest.mark.parametrize("days", [-1, 91])
def test_days_between_is_0_to_90(days: int) -> None:
    with pytest.raises(DomainError, match="0-90"):
        chain_sjukfall([], max_days_between=days, today=TODAY)


def test_overlapping_certificates_count_their_days_once_and_the_highest_degree_now() -> None:
    first = certificate("a", P1, date(2026, 2, 1), date(2026, 3, 10), degree=50)
    overlapping = certificate("b", P1, date(2026, 2, 20), date(2026, 3, 31), degree=75)
    (found,) = chain_sjukfall([first, overlapping], today=TODAY)
    assert (found.start, found.end) == (date(2026, 2, 1), date(2026, 3, 31))
    assert found.length_days == (date(2026, 3, 31) - date(2026, 2, 1)).days + 1
    assert found.degree == 75


def test_the_degree_is_the_one_of_today() -> None:
    periods = (
        SickLeavePeriod(date(2026, 2, 1), date(2026, 2, 28), 100),
        SickLeavePeriod(date(2026, 3, 1), date(2026, 3, 31), 50),
    )
    stepped = ActiveSickLeave("a", P1, UNIT, DOCTOR, periods)
    assert chain_sjukfall([stepped], today=date(2026, 2, 15))[0].degree == 100
    assert chain_sjukfall([stepped], today=date(2026, 3, 15))[0].degree == 50
    # After the end: the last period's; before the start: the first's.
    assert chain_sjukfall([stepped], today=date(2026, 5, 1))[0].degree == 50
    assert chain_sjukfall([stepped], today=date(2026, 1, 1))[0].degree == 100


def test_in_a_gap_between_chained_certificates_the_latest_begun_degree_holds() -> None:
    first = certificate("a", P1, date(2026, 2, 1), date(2026, 2, 26), degree=100)
    second = certificate("b", P1, date(2026, 3, 4), date(2026, 3, 31), degree=25)
    (found,) = chain_sjukfall([first, second], today=TODAY)  # 2 March: in the gap
    assert found.degree == 100
    assert found.length_days == 26 + 28


def test_each_unit_and_patient_has_its_own_sick_leaves() -> None:
    found = chain_sjukfall(
        [
            certificate("a", P1, JAN, date(2026, 1, 31)),
            certificate("b", P1, date(2026, 2, 1), date(2026, 2, 28), unit=OTHER_UNIT),
            certificate("c", P2, date(2026, 2, 1), date(2026, 2, 28)),
        ],
        today=TODAY,
    )
    assert [(s.care_unit, s.patient, s.certificate_ids) for s in found] == [
        (UNIT, P1, ("a",)),
        (UNIT, P2, ("c",)),
        (OTHER_UNIT, P1, ("b",)),
    ]


def test_a_repeated_certificate_counts_once() -> None:
    again = certificate("a", P1, JAN, date(2026, 1, 10))
    (found,) = chain_sjukfall([again, again], today=TODAY)
    assert found.certificate_ids == ("a",)
    assert found.length_days == 10


def test_ended_and_focus_window() -> None:
    (found,) = chain_sjukfall([certificate("a", P1, JAN, date(2026, 1, 31))], today=TODAY)
    assert found.ended(TODAY)
    assert not found.ended(date(2026, 1, 31))
    assert found.in_focus(JAN + timedelta(days=89), 90)  # day 90
    assert not found.in_focus(JAN + timedelta(days=90), 90)  # day 91


def test_rehabstod_ids_are_the_codesystems_properties_both_ways() -> None:
    system = json.loads((PROFILES_DIR / "CodeSystem-reko-status.json").read_text("utf-8"))
    from_profile = {
        concept["code"]: next(
            p["valueString"] for p in concept["property"] if p["code"] == "rehabstod-id"
        )
        for concept in system["concept"]
    }
    assert {status.value: rid for status, rid in REHABSTOD_IDS.items()} == from_profile
    assert set(REHABSTOD_IDS) == set(RekoStatus)
    for status in RekoStatus:
        assert RekoStatus.from_rehabstod_id(status.rehabstod_id) is status
    assert RekoStatus.from_rehabstod_id("REKO_3") is RekoStatus.AKTIV
    with pytest.raises(ValueError, match="not a Rehabstöd REKO status"):
        RekoStatus.from_rehabstod_id("REKO_9")
