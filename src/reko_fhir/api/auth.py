"""Bearer tokens on HTTP requests: who is calling, or a 401 OperationOutcome.

https://datatracker.ietf.org/doc/html/rfc6750 — a missing or bad token answers 401 with a
``WWW-Authenticate: Bearer`` challenge; a token that does not allow the interaction is 403 (in
:mod:`reko_fhir.security.guard`).
"""

from __future__ import annotations

from fastapi import Request

from reko_fhir.config import Settings
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.security.tokens import (
    LOCAL_ISSUER,
    AuthError,
    LocalSigningKey,
    Principal,
    TokenVerifier,
    load_jwks_file,
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="reko-fhir"'}


def build_verifier(settings: Settings) -> TokenVerifier:
    """Configured JWKS when given; else the local key in the data folder (created on first
    start), which ``reko-fhir serve`` trusts only on loopback."""
    audience, longest = settings.token_audience, settings.token_max_lifetime_seconds
    if settings.jwks_file is not None:
        keys = load_jwks_file(settings.jwks_file)
        return TokenVerifier(
            jwks=keys, issuer=settings.token_issuer, audience=audience, max_lifetime=longest
        )
    if settings.jwks_url is not None:
        return TokenVerifier(
            jwks_url=settings.jwks_url,
            issuer=settings.token_issuer,
            audience=audience,
            max_lifetime=longest,
        )
    local = LocalSigningKey.load_or_create(settings.data_dir)
    return TokenVerifier(
        jwks=local.jwks(), issuer=LOCAL_ISSUER, audience=audience, max_lifetime=longest
    )


async def authenticate(request: Request) -> Principal:
    """The checked Principal of ``request``; OperationOutcomeError 401 without one."""
    verifier: TokenVerifier = request.app.state.verifier
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("this request needs a bearer token (Authorization: Bearer …)")
        return await verifier.verify(token.strip())
    except AuthError as failure:
        code = IssueCode.EXPIRED if "expired" in failure.message else IssueCode.LOGIN
        raise OperationOutcomeError([error(code, failure.message, None)], status=401) from None
