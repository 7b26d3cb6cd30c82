"""Mutual TLS: the helper's client, and a real TLS loopback against the stub."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reko_fhir.delivery.auth import client_for, tls_context
from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.national import (
    ClientCertificate,
    ContractEndpoint,
    NationalConfigError,
    http_client,
)
from reko_fhir.delivery.rivta import ListActiveSickLeavesForCareUnitClient
from reko_fhir.domain import HsaId
from tests.delivery.rivta.conftest import LOGICAL_ADDRESS
from tests.peers.rivta_stub import rivta_stub


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    folder: Path,
    stem: str,
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca_cert, ca_key = _issue(tmp_path, "ca", "Test SITHS CA", None, ca=True)
    issuer = (ca_cert.subject, ca_key)
    _issue(tmp_path, "server", "intygstjansten.test", issuer, ip="127.0.0.1")
    _issue(tmp_path, "client", "SE2321000016-SYS1", issuer)
    return Pki(
        tmp_path / "ca.pem",
        tmp_path / "server.pem",
        tmp_path / "server.key",
        tmp_path / "client.pem",
        tmp_path / "client.key",
    )


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED  # the producer demands a client certificate
    return context


def mtls(pki: Pki, timeout: float) -> httpx.AsyncClient:
    """The national services' client, from the one builder every peer's client comes from."""
    endpoint = ContractEndpoint(
        base_url="https://127.0.0.1:1/vp",
        logical_addresses={"SE2321000016-E001": LOGICAL_ADDRESS},
        tls=ClientCertificate(cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.ca),
        timeout=timeout,
    )
    return http_client(endpoint)


async def test_the_builder_makes_a_verifying_client_that_shows_its_certificate(pki: Pki) -> None:
    context = tls_context(pki.client_cert, pki.client_key, pki.ca)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert "Test SITHS CA" in repr(context.get_ca_certs())
    assert len(context.get_ca_certs()) == 1
    async with mtls(pki, timeout=7.0) as client:
        assert client.timeout == httpx.Timeout(7.0)
        assert client.headers["Accept"] == "*/*"  # SOAP: not the FHIR targets' default
    async with client_for("https://ehr.test", ca_file=pki.ca) as client:
        assert client.headers["Accept"] == "application/fhir+json"
    with pytest.raises(ssl.SSLError):
        tls_context(pki.client_cert, pki.server_key, pki.ca)  # key of another certificate
    with pytest.raises(DeliveryError, match="cannot load the TLS files"):
        client_for("https://ehr.test", cert_file=pki.client_cert, key_file=pki.server_key)


def test_unusable_national_certificates_are_a_configuration_error(pki: Pki) -> None:
    endpoint = ContractEndpoint(
        base_url="https://127.0.0.1:1/vp",
        logical_addresses={"SE2321000016-E001": LOGICAL_ADDRESS},
        tls=ClientCertificate(cert_file=pki.client_cert, key_file=pki.server_key, ca_file=pki.ca),
    )
    # A ValueError, which ``reko-fhir preflight`` reports as a configuration fault.
    with pytest.raises(NationalConfigError, match="cannot load the TLS files"):
        http_client(endpoint)


async def test_a_real_mutual_tls_call_over_loopback(pki: Pki) -> None:
    with rivta_stub(tls=server_context(pki)) as stub:
        assert stub.url.startswith("https://127.0.0.1:")
        async with mtls(pki, timeout=5.0) as http:
            client = ListActiveSickLeavesForCareUnitClient(http, stub.url, LOGICAL_ADDRESS)
            answer = await client.fetch(HsaId("SE2321000016-E001"))
        assert len(answer.records) == 2
        assert stub.rejected == []
        # Without a client certificate the producer ends the handshake: a transport failure.
        plain = ssl.create_default_context(cafile=str(pki.ca))
        async with httpx.AsyncClient(verify=plain, timeout=5.0) as http:
            client = ListActiveSickLeavesForCareUnitClient(http, stub.url, LOGICAL_ADDRESS)
            with pytest.raises((httpx.TransportError, ssl.SSLError)) as caught:
                await client.fetch(HsaId("SE2321000016-E001"))
        # TLS 1.3 refuses after the handshake: the client sees the alert itself (final), or,
        # when the connection is gone first, a bare read error (as a reset would be: retried).
        chain, seen = [], caught.value
        while seen is not None and len(chain) < 10:
            chain.append(repr(seen))
            seen = seen.__cause__ or seen.__context__
        alert = "CERTIFICATE_REQUIRED" in " ".join(chain)
        assert is_retryable(caught.value) is not alert
        # A producer whose certificate we do not trust stays untrusted: final, not retried.
        async with httpx.AsyncClient(verify=ssl.create_default_context(), timeout=5.0) as http:
            client = ListActiveSickLeavesForCareUnitClient(http, stub.url, LOGICAL_ADDRESS)
            with pytest.raises(httpx.TransportError) as untrusted:
                await client.fetch(HsaId("SE2321000016-E001"))
        assert not is_retryable(untrusted.value)
        assert len(stub.exchanges) == 1  # only the authenticated call got through
