"""The targets file: one YAML (or JSON) document, refused with a located reason when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from reko_fhir.delivery.config import TargetConfigError, load_targets
from reko_fhir.delivery.retry import RetryPolicy

GOOD = """
targets:
  - name: ehr-north
    base_url: https://ehr.example.se/fhir
    resource_types: [CarePlan, Procedure]
    auth: {type: private_key_jwt, token_url: https://ehr.example.se/token, client_id: reko,
           key_file: keys/reko.pem, kid: reko-1, algorithm: ES384, scope: system/*.cruds}
    tls: {cert_file: c.pem, key_file: c.key, ca_file: ca.pem}
    retry: {max_attempts: 5, initial_wait: 0.1, longest_wait: 2}
    concurrency: 4
  - name: fk-notices
    base_url: http://127.0.0.1:9000/fhir
    resource_types: [Communication]
    external_recipient: "urn:oid:2.5.4.97|2021005521"
    auth: {type: client_credentials, token_url: https://fk/token, client_id: reko,
           client_secret_env: FK_SECRET}
"""


def test_a_targets_file_is_read_with_its_auth_tls_and_retry(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(GOOD, encoding="utf-8")
    north, fk = load_targets(path)
    assert north.subscription().resource_types == frozenset({"CarePlan", "Procedure"})
    assert north.auth is not None
    assert north.auth.type == "private_key_jwt"
    assert north.tls is not None
    assert north.tls.ca_file == Path("ca.pem")
    assert north.retry.policy() == RetryPolicy(5, 24 * 3600.0, 0.1, 2.0, 0.5)
    assert fk.external_recipient == "urn:oid:2.5.4.97|2021005521"
    inline = load_targets(None, '[{"name": "x", "base_url": "http://127.0.0.1:1"}]')
    assert [t.name for t in inline] == ["x"]
    assert (north.concurrency, inline[0].concurrency) == (4, 8)  # given, else the default


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("targets: [{name: x}]", "targets.0.base_url"),
        ("targets: [{name: x, base_url: 'ftp://a'}]", "targets.0.base_url"),
        ("targets: [{name: X!, base_url: 'http://a'}]", "targets.0.name"),
        ("targets: [{name: x, base_url: 'http://a', colour: red}]", "targets.0.colour"),
        ("targets: [{name: x, base_url: 'http://a', auth: {type: magic}}]", "targets.0.auth"),
        ("targets: [{name: x, base_url: 'http://a', retry: {max_attempts: 0}}]", "max_attempts"),
        ("targets: [{name: x, base_url: 'http://a', concurrency: 0}]", "targets.0.concurrency"),
        (
            "targets: [{name: x, base_url: 'http://a'}, {name: x, base_url: 'http://b'}]",
            "unique",
        ),
        ("targets: [", "not YAML"),
    ],
)
def test_a_wrong_targets_file_says_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TargetConfigError, match=says.replace(".", r"\.")):
        load_targets(path)


def test_a_missing_targets_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError, match="cannot read the targets file"):
        load_targets(tmp_path / "nowhere.yaml")


def test_the_retry_policy_backs_off_honours_retry_after_and_caps() -> None:
    from reko_fhir.delivery.errors import DeliveryError  # noqa: PLC0415

    policy = RetryPolicy(max_attempts=5, max_age=60, initial_wait=1, longest_wait=30, jitter=0)
    unavailable = DeliveryError("HTTP 503", status=503)
    assert [policy.decide(n, 0, unavailable) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.decide(5, 0, unavailable) is None  # attempts capped
    assert policy.decide(1, 61, unavailable) is None  # age capped
    assert policy.decide(1, 0, DeliveryError("HTTP 429", status=429, retry_after=7)) == 7.0
    assert policy.decide(1, 0, DeliveryError("HTTP 429", status=429, retry_after=900)) == 30.0
    assert policy.decide(1, 0, DeliveryError("HTTP 400", status=400)) is None  # not retryable


def test_one_function_decides_what_is_retryable() -> None:
    import httpx  # noqa: PLC0415

    from reko_fhir.delivery.errors import (  # noqa: PLC0415
        ConsentBlockedError,
        DeliveryError,
        error_from_response,
        is_retryable,
        retry_after_seconds,
    )

    request = httpx.Request("PUT", "http://ehr/Patient")
    assert is_retryable(httpx.ConnectError("refused", request=request))
    assert is_retryable(httpx.ReadTimeout("slow", request=request))
    assert is_retryable(httpx.RemoteProtocolError("reset", request=request))
    assert not is_retryable(ValueError("a bug"))
    assert not is_retryable(ConsentBlockedError("revoked"))
    assert not is_retryable(DeliveryError("SOAP fault", status=500, retryable=False))
    for status, expected in ((408, True), (429, True), (503, True), (404, False), (412, False)):
        answer = httpx.Response(status, request=request, headers={"Retry-After": "3"})
        error = error_from_response(answer, "PUT Patient")
        assert (status, is_retryable(error)) == (status, expected)
        assert error.retry_after == 3.0
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": "name missing"}],
    }
    refused = error_from_response(httpx.Response(422, json=outcome, request=request), "PUT")
    assert refused.outcome == outcome
    assert "name missing" in refused.reason
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None


def test_an_outcome_without_diagnostics_still_gives_its_text() -> None:
    import httpx  # noqa: PLC0415

    from reko_fhir.delivery.errors import error_from_response  # noqa: PLC0415

    request = httpx.Request("PUT", "http://ehr/Patient")
    medplum_style = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "details": {"text": "Invalid id"}}],
    }
    said = error_from_response(httpx.Response(400, json=medplum_style, request=request), "PUT")
    assert said.reason == "PUT: HTTP 400 — Invalid id"
    silent = error_from_response(httpx.Response(400, json={"issue": []}, request=request), "PUT")
    assert silent.reason == "PUT: HTTP 400"
