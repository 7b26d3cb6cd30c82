"""Mutual TLS for the national services: an httpx client that shows a certificate.

RIVTA BP 2.1 secures transport with mutual TLS (the consumer's SITHS/function certificate);
the clients take any ``httpx.AsyncClient``, and this builds one that presents ``cert_file``
with ``key_file`` and trusts only the CA bundle in ``ca_file`` (TLS 1.2 or newer).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx


def mtls_context(
    cert_file: str | Path, key_file: str | Path, ca_file: str | Path
) -> ssl.SSLContext:
    """A client context: verifies the server against ``ca_file`` only, shows our certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


def mtls_client(
    cert_file: str | Path,
    key_file: str | Path,
    ca_file: str | Path,
    timeout: float | httpx.Timeout = 30.0,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for mutual TLS; the caller closes it (``async with``)."""
    return httpx.AsyncClient(
        verify=mtls_context(cert_file, key_file, ca_file),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
    )
