"""How a target client proves who it is: OAuth 2.0 client credentials, SMART Backend Services
(https://hl7.org/fhir/smart-app-launch/backend-services.html) and mutual TLS.

Both token flows are ``httpx.Auth``: the token request goes out through the target's own client
(same TLS settings), the token is cached until shortly before it expires, fetched once however
many deliveries run at the same time, and fetched anew once when the server answers 401.

A token endpoint that refuses (4xx) is a configuration fault: ``DeliveryError(kind="config",
retryable=False)``. A 5xx/429 answer or a transport error there is retried like any other.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from reko_fhir.delivery.errors import RETRYABLE_STATUSES, DeliveryError, retry_after_seconds

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 240  # seconds; SMART allows at most five minutes, leave room for skew
DEFAULT_EXPIRES_IN = 300.0  # when the token response does not say


def _config_error(reason: str) -> DeliveryError:
    return DeliveryError(reason, retryable=False, kind="config")


class _TokenAuth(httpx.Auth):
    """A bearer token from a token endpoint, cached and shared by concurrent requests."""

    def __init__(
        self, token_url: str, scope: str | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.token_url = token_url
        self.scope = scope
        self.clock = clock
        self.fetches = 0  # how many tokens were fetched: for metrics and tests
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form

    def token_request(self) -> httpx.Request:
        """The client_credentials grant (RFC 6749 §4.4) with this client's authentication."""
        raise NotImplementedError

    def _accept(self, response: httpx.Response) -> str:
        """Take the token from the endpoint's answer, or raise why not."""
        if not response.is_success:
            status = response.status_code
            try:
                body = response.json()
                detail = f"{body.get('error', '')} {body.get('error_description', '')}".strip()
            except (ValueError, AttributeError):
                detail = response.text[:200]
            retryable = status in RETRYABLE_STATUSES
            raise DeliveryError(
                f"token endpoint {self.token_url}: HTTP {status} {detail}".strip(),
                status=status,
                retryable=retryable,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                kind="target" if retryable else "config",
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (ValueError, KeyError, TypeError):
            raise _config_error(f"token endpoint {self.token_url}: no access_token") from None
        if str(body.get("token_type", "bearer")).lower() != "bearer":
            raise _config_error(f"token endpoint {self.token_url}: not a bearer token")
        self.fetches += 1
        self._token = token
        # Renew shortly before expiry so a token never runs out on the way to the server.
        self._expires_at = self.clock() + expires_in - min(30.0, expires_in / 5)
        return token

    async def _fetch(self, response: httpx.Response) -> str:
        await response.aread()  # an overridden async flow gets the response unread
        return self._accept(response)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("token auth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:  # one fetch, however many requests wait for it
            if self._token is None or self.clock() >= self._expires_at:
                token = await self._fetch((yield self.token_request()))
            else:
                token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token in (None, token):  # nobody renewed it meanwhile
                token = await self._fetch((yield self.token_request()))
            else:
                token = str(self._token)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request  # once: a second 401 is the server's final answer


class ClientCredentialsAuth(_TokenAuth):
    """OAuth 2.0 client credentials with a client secret (HTTP Basic, RFC 6749 §2.3.1, or in
    the form with ``client_auth="post"``)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        client_auth: Literal["basic", "post"] = "basic",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, scope, clock=clock)
        self.client_id = client_id
        self._secret = client_secret
        self.client_auth = client_auth

    def token_request(self) -> httpx.Request:
        form = self._form()
        headers = {"Accept": "application/json"}
        if self.client_auth == "post":
            form |= {"client_id": self.client_id, "client_secret": self._secret}
        else:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return httpx.Request("POST", self.token_url, data=form, headers=headers)


class PrivateKeyJwtAuth(_TokenAuth):
    """SMART Backend Services: the client authenticates with a JWT signed by its private key
    (https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: bytes | str,
        kid: str,
        *,
        algorithm: Literal["RS384", "ES384"] = "RS384",
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, scope, clock=clock)
        self.client_id = client_id
        self.kid = kid
        self.algorithm = algorithm
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise _config_error(f"cannot read the private key for {client_id}: {exc}") from None
        if algorithm == "RS384":
            fits = isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
        elif algorithm == "ES384":
            fits = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
        else:
            raise _config_error(f"algorithm {algorithm} is not RS384 or ES384")
        if not fits:
            raise _config_error(f"the private key for {client_id} does not fit {algorithm}")
        self._key: Any = key

    def assertion(self) -> str:
        """A fresh client assertion: iss = sub = client_id, aud = token URL, unique jti."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.kid, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def token_request(self) -> httpx.Request:
        form = self._form() | {
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.assertion(),
        }
        return httpx.Request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )


def tls_context(
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
    ca_file: Path | str | None = None,
) -> ssl.SSLContext:
    """A client TLS context (TLS 1.2 or newer) that verifies the server against ``ca_file``
    only (else the usual CAs) and, with ``cert_file``, shows our certificate (mutual TLS, as
    RIVTA BP 2.1 asks: the key in ``key_file`` or in the same file). Raises ``OSError`` or
    ``ssl.SSLError`` for files it cannot use."""
    if ca_file:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    else:  # httpx's own default: certifi's CAs, or SSL_CERT_FILE/SSL_CERT_DIR when set
        context = httpx.create_ssl_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return context


def client_for(
    base_url: str,
    *,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
    ca_file: Path | str | None = None,
    timeout: float = 10.0,
    auth: httpx.Auth | None = None,
    concurrency: int | None = None,
    accept: str | None = "application/fhir+json",
) -> httpx.AsyncClient:
    """The one builder of a peer's ``httpx.AsyncClient`` (FHIR targets, the national services,
    the national log): mutual TLS when ``cert_file`` is given (see :func:`tls_context`), the
    peer's CA from ``ca_file``; ``accept`` is the default ``Accept`` header (None: httpx's).

    With ``concurrency`` (the requests the caller keeps in flight) every connection it uses is
    kept alive between requests: httpx keeps only 20 by default and closes the rest, so each
    request past 20 paid a new connection (and TLS handshake). One more connection than that
    is allowed, for a token request beside the deliveries."""
    if key_file and not cert_file:
        raise _config_error("a TLS key_file without a cert_file")
    try:
        context = tls_context(cert_file, key_file, ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise _config_error(f"cannot load the TLS files for {base_url}: {exc}") from None
    limits = (
        httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency)
        if concurrency is not None
        else httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own
    )
    return httpx.AsyncClient(
        base_url=base_url,
        verify=context,
        limits=limits,
        timeout=httpx.Timeout(timeout),
        auth=auth,
        headers={"Accept": accept} if accept else None,
    )
