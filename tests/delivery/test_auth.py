"""Target authentication against a real loopback token endpoint and FHIR endpoint (a Starlette
app under uvicorn in a thread): SMART Backend Services assertions verified with the public key,
client secrets, token caching, one fetch under concurrency, renewal on 401, refusals, and
mutual TLS with a CA made here.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import httpx
import jwt
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reko_fhir.delivery.auth import (
    JWT_BEARER,
    ClientCredentialsAuth,
    PrivateKeyJwtAuth,
    client_for,
)
from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.fhir import FhirTarget
from tests.peers.servers import free_port

CLIENT_ID, SECRET, SCOPE = "reko", "s3cret:with&odd=chars", "system/*.rs"


@dataclass
class Endpoint:
    """What the token endpoint and the FHIR endpoint saw, and how they should behave."""

    public_key: Any = None
    algorithm: str = "RS384"
    expires_in: int = 300
    token_status: int | None = None  # answer the token endpoint with this error status
    reject_all: bool = False  # the FHIR endpoint refuses every token
    forms: list[dict[str, str]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    fhir_hits: int = 0
    base_url: str = ""

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    async def token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        self.forms.append(form)
        if self.token_status:
            return JSONResponse({"error": "invalid_client"}, self.token_status)
        if "client_assertion" in form:
            assert form["client_assertion_type"] == JWT_BEARER
            claims = jwt.decode(
                form["client_assertion"],
                self.public_key,
                algorithms=[self.algorithm],
                audience=self.token_url,
                issuer=CLIENT_ID,
                options={"require": ["exp", "jti", "sub"]},
            )
            self.claims.append(claims)
        elif "client_secret" in form:
            if (form.get("client_id"), form["client_secret"]) != (CLIENT_ID, SECRET):
                return JSONResponse({"error": "invalid_client"}, 401)
        else:
            user, _, password = (
                base64.b64decode(request.headers.get("Authorization", "Basic ").split()[1] or b"")
                .decode()
                .partition(":")
            )
            if (unquote_plus(user), unquote_plus(password)) != (CLIENT_ID, SECRET):
                return JSONResponse({"error": "invalid_client"}, 401)
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
        )

    async def fhir(self, request: Request) -> JSONResponse:
        self.fhir_hits += 1
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.reject_all or token not in self.issued or token in self.revoked:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, 401)
        entry = {"resource": {"resourceType": "Patient", "id": "p1"}}
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "entry": [entry]})


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path) -> Pki:
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write(name: str, data: bytes) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    def pem(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = dt.datetime.now(dt.UTC)
    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reko test CA")])

    def issue(subject: str, public: Any, *, ca: bool, extensions: list[Any]) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                ca_name if ca else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
            )
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    ca_cert = issue("reko test CA", ca_key.public_key(), ca=True, extensions=[])
    server_key, client_key = key(), key()
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = issue("127.0.0.1", server_key.public_key(), ca=False, extensions=[san])
    client = issue("reko-client", client_key.public_key(), ca=False, extensions=[])
    encode = serialization.Encoding.PEM
    return Pki(
        ca=write("ca.pem", ca_cert.public_bytes(encode)),
        server_cert=write("server.pem", server.public_bytes(encode)),
        server_key=write("server.key", pem(server_key)),
        client_cert=write("client.pem", client.public_bytes(encode)),
        client_key=write("client.key", pem(client_key)),
    )


@contextmanager
def serve(endpoint: Endpoint, pki: Pki | None = None) -> Iterator[Endpoint]:
    """Run the endpoints under uvicorn in a thread; HTTPS demanding a client certificate
    when ``pki`` is given."""
    app = Starlette(
        routes=[
            Route("/token", endpoint.token, methods=["POST"]),
            Route("/fhir/Patient", endpoint.fhir, methods=["GET"]),
        ]
    )
    port = free_port()
    tls: dict[str, Any] = {}
    if pki:
        tls = {
            "ssl_certfile": str(pki.server_cert),
            "ssl_keyfile": str(pki.server_key),
            "ssl_ca_certs": str(pki.ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none", **tls
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    endpoint.base_url = f"{'https' if pki else 'http'}://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        server.should_exit = True
        thread.join(10)


def rsa_key() -> tuple[bytes, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem(key), key.public_key()


def ec_key() -> tuple[bytes, Any]:
    key = ec.generate_private_key(ec.SECP384R1())
    return _pem(key), key.public_key()


def _pem(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return data


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serve(Endpoint()) as running:
        yield running


def secret_auth(endpoint: Endpoint, **options: Any) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(endpoint.token_url, CLIENT_ID, SECRET, SCOPE, **options)


@pytest.mark.parametrize(("algorithm", "make_key"), [("RS384", rsa_key), ("ES384", ec_key)])
async def test_smart_backend_assertion_is_signed_and_the_token_reused(
    endpoint: Endpoint, algorithm: Any, make_key: Any
) -> None:
    pem, public = make_key()
    endpoint.public_key, endpoint.algorithm = public, algorithm
    auth = PrivateKeyJwtAuth(
        endpoint.token_url, CLIENT_ID, pem, "key-1", algorithm=algorithm, scope=SCOPE
    )
    async with client_for(endpoint.base_url, auth=auth) as client:
        target = FhirTarget(client, endpoint.base_url + "/fhir", name="ehr")
        assert [p["id"] for p in await target.pull("Patient", since=None)] == ["p1"]
        assert [p["id"] for p in await target.pull("Patient", since=None)] == ["p1"]
    assert (len(endpoint.forms), auth.fetches, endpoint.fhir_hits) == (1, 1, 2)
    form = endpoint.forms[0]
    assert (form["grant_type"], form["scope"]) == ("client_credentials", SCOPE)
    (claims,) = endpoint.claims  # the endpoint verified the signature with the public key
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert 0 < claims["exp"] - time.time() <= 300
    header = jwt.get_unverified_header(form["client_assertion"])
    assert (header["kid"], header["alg"]) == ("key-1", algorithm)
    other_public = make_key()[1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            form["client_assertion"],
            other_public,
            algorithms=[algorithm],
            audience=endpoint.token_url,
        )


def test_each_assertion_has_its_own_jti() -> None:
    pem, _ = rsa_key()
    auth = PrivateKeyJwtAuth("https://ehr.test/token", CLIENT_ID, pem, "k")
    ids = {jwt.decode(auth.assertion(), options={"verify_signature": False})["jti"] for _ in "abc"}
    assert len(ids) == 3


@pytest.mark.parametrize("client_auth", ["basic", "post"])
async def test_one_token_fetch_for_twenty_concurrent_requests(
    endpoint: Endpoint, client_auth: Any
) -> None:
    auth = secret_auth(endpoint, client_auth=client_auth)
    async with client_for(endpoint.base_url, auth=auth) as client:
        answers = await asyncio.gather(*(client.get("/fhir/Patient") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert (auth.fetches, len(endpoint.forms), endpoint.fhir_hits) == (1, 1, 20)
    assert ("client_secret" in endpoint.forms[0]) == (client_auth == "post")


async def test_the_token_is_renewed_shortly_before_it_expires(endpoint: Endpoint) -> None:
    now = [1000.0]
    endpoint.expires_in = 100  # renewed 20 s early
    auth = secret_auth(endpoint, clock=lambda: now[0])
    async with client_for(endpoint.base_url, auth=auth) as client:
        for moment in (1000.0, 1079.0, 1081.0, 1100.0):
            now[0] = moment
            assert (await client.get("/fhir/Patient")).status_code == 200
    assert endpoint.issued == ["tok-1", "tok-2"]


async def test_a_401_fetches_a_new_token_once(endpoint: Endpoint) -> None:
    auth = secret_auth(endpoint)
    async with client_for(endpoint.base_url, auth=auth) as client:
        assert (await client.get("/fhir/Patient")).status_code == 200
        endpoint.revoked.add("tok-1")  # the server forgot it before its expiry
        assert (await client.get("/fhir/Patient")).status_code == 200
        assert (endpoint.issued, endpoint.fhir_hits) == (["tok-1", "tok-2"], 3)
        endpoint.reject_all = True  # a 401 a new token does not cure is the final answer
        assert (await client.get("/fhir/Patient")).status_code == 401
    assert (len(endpoint.issued), endpoint.fhir_hits) == (3, 5)


async def test_a_401_through_fhir_target_is_final(endpoint: Endpoint) -> None:
    endpoint.reject_all = True
    async with client_for(endpoint.base_url, auth=secret_auth(endpoint)) as client:
        with pytest.raises(DeliveryError) as refused:
            await FhirTarget(client, endpoint.base_url + "/fhir", name="ehr").pull(
                "Patient", since=None
            )
    assert refused.value.status == 401
    assert not is_retryable(refused.value)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (503, True)])
async def test_token_endpoint_refusals(endpoint: Endpoint, status: int, retryable: bool) -> None:
    endpoint.token_status = status
    async with client_for(endpoint.base_url, auth=secret_auth(endpoint)) as client:
        with pytest.raises(DeliveryError) as refused:
            await client.get("/fhir/Patient")
    assert refused.value.retryable is retryable
    assert refused.value.kind == ("target" if retryable else "config")
    assert "invalid_client" in refused.value.reason
    assert endpoint.fhir_hits == 0


async def test_a_wrong_secret_is_a_config_error(endpoint: Endpoint) -> None:
    auth = ClientCredentialsAuth(endpoint.token_url, CLIENT_ID, "wrong", SCOPE)
    async with client_for(endpoint.base_url, auth=auth) as client:
        with pytest.raises(DeliveryError) as refused:
            await client.get("/fhir/Patient")
    assert refused.value.kind == "config"
    assert not is_retryable(refused.value)


async def test_an_unreachable_token_endpoint_is_retryable() -> None:
    token_url = f"http://127.0.0.1:{free_port()}/token"  # nobody listens there
    auth = ClientCredentialsAuth(token_url, CLIENT_ID, SECRET)
    async with client_for("http://127.0.0.1:9", auth=auth) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get("/fhir/Patient")
    assert is_retryable(failed.value)


def test_a_key_that_does_not_fit_is_a_config_error() -> None:
    rsa_pem, _ = rsa_key()
    with pytest.raises(DeliveryError, match="does not fit ES384") as wrong:
        PrivateKeyJwtAuth("https://t/token", CLIENT_ID, rsa_pem, "k", algorithm="ES384")
    assert wrong.value.kind == "config"
    with pytest.raises(DeliveryError, match="cannot read the private key"):
        PrivateKeyJwtAuth("https://t/token", CLIENT_ID, b"not a key", "k")


def test_client_for_refuses_incomplete_tls_files(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="without a cert_file"):
        client_for("https://ehr.test", key_file=tmp_path / "k.pem")
    with pytest.raises(DeliveryError, match="cannot load the TLS files") as missing:
        client_for("https://ehr.test", cert_file=tmp_path / "absent.pem")
    assert missing.value.kind == "config"


async def test_mutual_tls_with_a_private_key_jwt(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pem, public = ec_key()
    with serve(Endpoint(public_key=public, algorithm="ES384"), pki) as endpoint:

        def auth() -> PrivateKeyJwtAuth:
            return PrivateKeyJwtAuth(
                endpoint.token_url, CLIENT_ID, pem, "k", algorithm="ES384", scope=SCOPE
            )

        files = {"cert_file": pki.client_cert, "key_file": pki.client_key, "ca_file": pki.ca}
        async with client_for(endpoint.base_url, **files, auth=auth()) as client:
            assert (await client.get("/fhir/Patient")).status_code == 200
        assert len(endpoint.claims) == 1  # the token came over the same mutual TLS
        # Without a client certificate the server ends the handshake.
        async with client_for(endpoint.base_url, ca_file=pki.ca, auth=auth()) as client:
            with pytest.raises(httpx.TransportError):
                await client.get("/fhir/Patient")
        # Without our CA the client does not trust the server.
        async with client_for(
            endpoint.base_url, cert_file=pki.client_cert, key_file=pki.client_key, auth=auth()
        ) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get("/fhir/Patient")
    assert endpoint.fhir_hits == 1
