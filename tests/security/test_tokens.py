"""Token checking and SMART scopes: every way a token can be wrong is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from reko_fhir.security import tokens
from reko_fhir.security.scopes import Scopes
from reko_fhir.security.tokens import AuthError, LocalSigningKey, TokenVerifier
from tests.security.conftest import start_service

UNIT = "SE2321000016-15CQ"
ISSUER = "https://idp.region.example"


def rsa_key() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return key, {"keys": [{**public, "kid": "idp-1", "alg": "RS256", "use": "sig"}]}


def idp_token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "reko-fhir",
        "sub": "SE2321000016-1003",
        "care_unit": UNIT,
        "scope": "user/Procedure.cruds",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "idp-1"})


@pytest.fixture(scope="module")
def idp() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    return rsa_key()


async def test_a_token_of_the_configured_issuer_is_accepted(idp: Any) -> None:
    key, jwks = idp
    verifier = TokenVerifier(jwks=jwks, issuer=ISSUER)
    principal = await verifier.verify(idp_token(key))
    assert principal.care_unit == UNIT
    assert principal.scopes.allows("Procedure", "c")
    assert not principal.scopes.allows("Patient", "r")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"care_unit": "not-an-hsa-id"}, "HSA-id"),
        ({"care_unit": None}, "exactly one"),
        ({"external_actor": "urn:oid:2.5.4.97|2021005521"}, "exactly one"),
        ({"reko_all_units": True, "care_unit": None}, "system clients"),
        ({"sub": ""}, "subject"),
    ],
)
async def test_a_wrong_token_is_refused_with_its_reason(
    idp: Any, claims: dict[str, Any], reason: str
) -> None:
    key, jwks = idp
    body = {k: v for k, v in claims.items() if v is not None}
    token = idp_token(key, **body)
    if claims.get("care_unit", "") is None:
        payload = jwt.decode(token, options={"verify_signature": False})
        payload.pop("care_unit")
        token = jwt.encode(payload, key, algorithm="RS256", headers={"kid": "idp-1"})
    with pytest.raises(AuthError, match=reason):
        await TokenVerifier(jwks=jwks, issuer=ISSUER).verify(token)


async def test_a_token_signed_by_another_key_or_with_alg_none_is_refused(idp: Any) -> None:
    _, jwks = idp
    other, _ = rsa_key()
    verifier = TokenVerifier(jwks=jwks, issuer=ISSUER)
    with pytest.raises(AuthError, match="not valid"):
        await verifier.verify(idp_token(other))
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": "reko-fhir", "sub": "x", "care_unit": UNIT, "exp": 2**40},
        None,
        algorithm="none",
        headers={"kid": "idp-1"},
    )
    with pytest.raises(AuthError, match="not valid"):
        await verifier.verify(unsigned)
    # An HS256 token keyed with public material (the classic algorithm confusion).
    confused = jwt.encode(
        {"sub": "x", "exp": 2**40}, jwks["keys"][0]["n"].encode(), algorithm="HS256"
    )
    with pytest.raises(AuthError, match="not valid"):
        await verifier.verify(confused)


class _JwksHandler(BaseHTTPRequestHandler):
    document: bytes = b""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def jwks_url(idp: Any) -> Iterator[str]:
    _JwksHandler.document = json.dumps(idp[1]).encode()
    _JwksHandler.hits = 0
    server = HTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


async def test_keys_from_a_jwks_url_are_fetched_once_and_cached(idp: Any, jwks_url: str) -> None:
    key, _ = idp
    verifier = TokenVerifier(jwks_url=jwks_url, issuer=ISSUER)
    for _ in range(3):
        assert (await verifier.verify(idp_token(key))).care_unit == UNIT
    assert _JwksHandler.hits == 1


def test_the_service_with_a_jwks_file_trusts_that_issuer_and_not_its_local_key(
    idp: Any, tmp_path: Path
) -> None:
    key, jwks = idp
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(jwks))
    data = tmp_path / "data"
    env = {"REKO_JWKS_FILE": str(keys), "REKO_TOKEN_ISSUER": ISSUER}
    service = start_service(data, env)
    try:
        good = {"authorization": f"Bearer {idp_token(key, scope='system/Procedure.rs')}"}
        assert httpx.get(f"{service.base}/Procedure", headers=good).status_code == 200
        local = LocalSigningKey.load_or_create(data).mint(
            "system/*.cruds", subject="x", care_unit=UNIT
        )
        refused = httpx.get(
            f"{service.base}/Procedure", headers={"authorization": f"Bearer {local}"}
        )
        assert refused.status_code == 401
    finally:
        service.process.terminate()
        service.process.wait(timeout=15)


@pytest.mark.parametrize(
    ("scope", "resource_type", "permission", "allowed"),
    [
        ("system/CarePlan.rs", "CarePlan", "r", True),
        ("system/CarePlan.rs", "CarePlan", "s", True),
        ("system/CarePlan.rs", "CarePlan", "u", False),
        ("system/CarePlan.rs", "Procedure", "r", False),
        ("user/Procedure.cruds", "Procedure", "d", True),
        ("user/*.r", "Consent", "r", True),
        ("user/*.r", "Consent", "s", False),
        ("user/Procedure.read", "Procedure", "s", True),  # SMART v1
        ("user/Procedure.write", "Procedure", "r", False),
        ("user/Procedure.write", "Procedure", "u", True),
        ("system/Procedure.dr", "Procedure", "r", False),  # out of v2 order: not a scope
        ("patient/Procedure.rs", "Procedure", "r", False),  # no patient launch context here
        ("system/Procedure.rs?category=x", "Procedure", "r", False),  # narrowing not honoured
        ("openid fhirUser", "Procedure", "r", False),
    ],
)
def test_smart_scopes(scope: str, resource_type: str, permission: str, allowed: bool) -> None:
    assert Scopes.parse(scope).allows(resource_type, permission) is allowed


async def test_a_token_living_longer_than_the_maximum_is_refused(tmp_path: Path) -> None:
    """Issue 12: a 100-year token was accepted; ``REKO_TOKEN_MAX_LIFETIME_SECONDS`` bounds it."""
    key = LocalSigningKey.load_or_create(tmp_path)
    verifier = TokenVerifier(jwks=key.jwks(), max_lifetime=3600)
    unit = "SE2321000016-15CQ"
    ok = key.mint("system/*.r", subject="s", care_unit=unit, lifetime=3600)
    assert (await verifier.verify(ok)).care_unit == unit
    long = key.mint("system/*.r", subject="s", care_unit=unit, lifetime=100 * 365 * 86400)
    with pytest.raises(AuthError, match="longer than 3600 s"):
        await verifier.verify(long)


async def test_a_token_whose_alg_is_not_its_keys_is_a_401_not_a_crash(tmp_path: Path) -> None:
    """Issue 12: RS256 under the kid of an EC key raised TypeError (a 500 and a traceback)."""
    key = LocalSigningKey.load_or_create(tmp_path)
    verifier = TokenVerifier(jwks=key.jwks())
    other, _ = rsa_key()
    now = int(time.time())
    token = jwt.encode(
        {"sub": "s", "aud": "reko-fhir", "exp": now + 60, "iat": now},
        other,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    with pytest.raises(AuthError, match="not its key's") as refused:
        await verifier.verify(token)
    assert refused.value.status == 401


async def test_a_token_is_checked_once_and_refused_once_it_expires(
    idp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verified-token cache: the signature is checked at the first use only, the expiry
    (with the leeway) at every use, and a refused token is never remembered."""
    key, jwks = idp
    verifier = TokenVerifier(jwks=jwks, issuer=ISSUER, leeway=30)
    checks: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        checks.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    now = time.time()
    token = idp_token(key, exp=int(now) + 60)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert len(checks) == 1
    monkeypatch.setattr(tokens, "_now", lambda: now + 60 + 29)  # inside the leeway
    assert await verifier.verify(token) == first
    monkeypatch.setattr(tokens, "_now", lambda: now + 60 + 31)
    with pytest.raises(AuthError, match="expired"):
        await verifier.verify(token)
    assert len(checks) == 1  # refused from what the first check remembered
    monkeypatch.setattr(tokens, "_now", lambda: now)
    wrong = idp_token(key, aud="another-service")
    for _ in range(2):
        with pytest.raises(AuthError, match="audience"):
            await verifier.verify(wrong)
    assert len(checks) == 3


async def test_a_remembered_token_is_not_valid_before_its_nbf(
    idp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, jwks = idp
    verifier = TokenVerifier(jwks=jwks, issuer=ISSUER, leeway=30)
    now = time.time()
    token = idp_token(key, nbf=int(now) - 10)
    await verifier.verify(token)
    monkeypatch.setattr(tokens, "_now", lambda: now - 10 - 31)  # the clock went back
    with pytest.raises(AuthError, match="not valid yet"):
        await verifier.verify(token)


async def test_the_verified_tokens_are_bounded(idp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key, jwks = idp
    verifier = TokenVerifier(jwks=jwks, issuer=ISSUER, cached_tokens=2)
    checks: list[str] = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda t, *a, **k: checks.append(t) or decode(t, *a, **k))
    first, second, third = (idp_token(key, jti=str(n)) for n in range(3))
    for token in (first, second, first, third):  # third pushes out second, the least recent
        await verifier.verify(token)
    assert len(checks) == 3
    await verifier.verify(first)
    assert len(checks) == 3
    await verifier.verify(second)
    assert checks[-1] == second
    assert len(checks) == 4
