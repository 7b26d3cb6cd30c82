"""Bearer tokens: checking them (JWKS from a file, a URL, or the local key) and minting local ones.

Tokens are JWTs (RFC 7519) signed RS256 or ES256, as SMART backend services and most identity
providers issue them (https://hl7.org/fhir/smart-app-launch/backend-services.html). Besides the
registered claims (``iss``, ``aud``, ``exp``, ``nbf``, ``sub``) a token says on whose behalf it
acts: ``care_unit`` (the HSA-id of a care unit), or ``external_actor`` (the identifier of an
outside organisation such as Försäkringskassan, ``urn:oid:2.5.4.97|2021005521``), or, for a
regional integration platform that routes between units, ``reko_all_units: true``.

The embedded default needs no identity provider: on first start the service creates an ES256
key in its data folder and trusts it (only while it listens on loopback);
``reko-fhir token`` signs with the same key.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId
from reko_fhir.security.scopes import Scopes

LOCAL_ISSUER = "reko-fhir-local"
DEFAULT_AUDIENCE = "reko-fhir"
ALGORITHMS = ["RS256", "ES256"]
KEY_FILE = "signing-key.pem"


class AuthError(Exception):
    """A request without a usable token (401) or with one that does not allow it (403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and on whose behalf, from a checked token."""

    subject: str
    scopes: Scopes
    care_unit: str | None = None
    external_actor: str | None = None
    all_units: bool = False
    client_id: str | None = None

    @property
    def on_behalf_of(self) -> str | None:
        return self.care_unit or self.external_actor


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("the token names no subject (sub)")
    unit, actor = claims.get("care_unit"), claims.get("external_actor")
    all_units = claims.get("reko_all_units") is True
    if sum((isinstance(unit, str), isinstance(actor, str), all_units)) != 1:
        message = "the token must carry exactly one of care_unit, external_actor, reko_all_units"
        raise AuthError(message)
    if isinstance(unit, str):
        try:
            HsaId(unit)
        except DomainError:
            raise AuthError("the token's care_unit is not an HSA-id") from None
    if isinstance(actor, str) and "|" not in actor:
        raise AuthError("the token's external_actor is not an identifier system|value")
    scopes = Scopes.parse(str(claims.get("scope", "")))
    if all_units and any(g.context != "system" for g in scopes.grants):
        raise AuthError("reko_all_units is for system clients (system/ scopes) only")
    client = claims.get("client_id") or claims.get("azp")
    return Principal(
        subject,
        scopes,
        unit if isinstance(unit, str) else None,
        actor if isinstance(actor, str) else None,
        all_units,
        client if isinstance(client, str) else None,
    )


class LocalSigningKey:
    """The ES256 key in the data folder that the embedded default trusts and signs with."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        public = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.kid = _thumbprint(public)  # to_jwk gives no kid: RFC 7638 names the key
        self.public_jwk = {**public, "kid": self.kid, "alg": "ES256", "use": "sig"}

    @classmethod
    def load_or_create(cls, data_dir: Path) -> LocalSigningKey:
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # Created readable by the owner only; O_EXCL: two workers starting at once keep one.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls.load_or_create(data_dir)
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
            return cls(key)
        for _ in range(50):  # another process may be between creating and writing it
            pem = path.read_bytes()
            if pem:
                break
            time.sleep(0.02)
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise AuthError(f"{path} is not an EC private key", 500)
        return cls(loaded)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def mint(
        self,
        scope: str,
        *,
        subject: str,
        care_unit: str | None = None,
        external_actor: str | None = None,
        all_units: bool = False,
        lifetime: float = 3600.0,
        audience: str = DEFAULT_AUDIENCE,
        not_before: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "sub": subject,
            "scope": scope,
            "iat": now,
            "nbf": int(not_before) if not_before is not None else now,
            "exp": now + int(lifetime),
            "jti": uuid.uuid4().hex,
            "client_id": "reko-fhir-cli",
        }
        if care_unit:
            claims["care_unit"] = care_unit
        if external_actor:
            claims["external_actor"] = external_actor
        if all_units:
            claims["reko_all_units"] = True
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})


CACHED_TOKENS = 1024
"""Verified tokens a verifier remembers (the least recently used leave first)."""


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims were checked: what it says and when it is valid."""

    principal: Principal
    expires: float
    not_before: float | None


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and not-before; returns the Principal.

    A token checked once is remembered by its exact text (a bounded LRU): a client sends the
    same token with every request, and checking its signature again cost more than a
    validated write's store work (issue 15). Its expiry and not-before are still checked on
    every use, against the same leeway."""

    def __init__(
        self,
        *,
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str = DEFAULT_AUDIENCE,
        leeway: float = 30.0,
        max_lifetime: float | None = None,
        cached_tokens: int = CACHED_TOKENS,
    ) -> None:
        if (jwks is None) == (jwks_url is None):
            raise ValueError("give the keys as a JWKS document or a JWKS URL, not both")
        self._set = jwt.PyJWKSet.from_dict(jwks) if jwks is not None else None
        # PyJWKClient caches the keys and fetches again for an unknown kid (key rotation).
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.cached_tokens = cached_tokens
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            self._still_valid(token, known)
            self._verified.move_to_end(token)
            return known.principal
        if self._client is not None:  # its fetch is blocking urllib: kept off the event loop
            checked = await asyncio.to_thread(self._verify, token)
        else:
            checked = self._verify(token)
        self._verified[token] = checked
        if len(self._verified) > self.cached_tokens:
            self._verified.popitem(last=False)
        return checked.principal

    def _still_valid(self, token: str, known: _Verified) -> None:
        """As the first check decided (PyJWT's rules): expired once ``exp`` is ``leeway``
        seconds past, not valid while ``nbf`` is more than ``leeway`` seconds ahead."""
        now = _now()
        if known.expires <= now - self.leeway:
            del self._verified[token]
            raise AuthError("the token has expired")
        if known.not_before is not None and known.not_before > now + self.leeway:
            raise AuthError("the token is not valid yet (nbf)")

    def _verify(self, token: str) -> _Verified:
        try:
            key = self._signing_key(token)
            # The token's alg must be the key's: an RS256 token against an EC key is a bad
            # token (401), not a key the library cannot use (TypeError, a 500 before).
            alg = jwt.get_unverified_header(token).get("alg")
            if alg not in ALGORITHMS or alg != key.algorithm_name:
                raise AuthError(
                    f"the token is not valid: its alg ({str(alg)[:16]}) is not its key's"
                )
            options = {"require": ["exp", "sub"], "verify_iss": self.issuer is not None}
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise AuthError("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("the token is from an issuer not trusted here") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthError(f"the token is not valid: {type(exc).__name__}") from None
        self._check_lifetime(claims)
        nbf = claims.get("nbf")
        return _Verified(
            principal_from_claims(claims),
            float(claims["exp"]),
            None if nbf is None else float(nbf),  # PyJWT checked that both are numbers
        )

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A token may live at most ``max_lifetime`` seconds (``exp`` - ``iat``; without
        ``iat``, from now): a stolen long-lived token stays usable for as long as it says."""
        if self.max_lifetime is None:
            return
        issued = claims.get("iat")
        start = issued if isinstance(issued, int | float) else time.time()
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp - start > self.max_lifetime + self.leeway:
            raise AuthError(f"the token lives longer than {int(self.max_lifetime)} s allowed here")

    def _signing_key(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        assert self._set is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in self._set.keys if kid is None or k.key_id == kid]
        if len(keys) != 1:
            raise jwt.InvalidKeyError("no single key of the JWKS matches the token's kid")
        return keys[0]


def load_jwks_file(path: Path) -> dict[str, Any]:
    document: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{path} is not a JWKS document (an object with 'keys')")
    return document


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, the key's id."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
