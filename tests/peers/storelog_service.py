"""The national log service as a real process on loopback: StoreLog 2.0 that fails at random.

Every request is checked as :class:`tests.peers.rivta_stub.RivtaStub` checks it (text/xml, the
WSDL's SOAPAction, a SOAP 1.1 envelope with a LogicalAddress, a body the StoreLog XSD accepts);
a request that fails is answered with a SOAP Fault and counted in ``rejected``. A request that
passes meets its fate, drawn with ``--failure-rate`` from a seeded generator:

- ``503`` (Service Unavailable, HTML body), ``502`` (a gateway's, no SOAP), ``reset`` (TCP RST
  before anything is stored): nothing stored, the client retries;
- ``lost``: the posts are stored, then the connection is reset: the answer never arrives, so the
  client sends the same posts again (the duplicates this stub must recognise);
- ``ok``: stored, answered resultCode OK (XSD-valid); ``held`` the same, answered late.

``POST /_fail?count=N`` answers the next N valid requests with resultCode ERROR (final, stores
nothing). ``POST /_hold?seconds=S`` makes the next request that would succeed ``held``: stored at
once, answered OK only after S seconds (the window in which a test kills its client). Posts are stored once per ``logId``, as an idempotent log service would; a post
whose id was stored before counts as a duplicate. ``GET /_stats`` gives the counts and every
request's ids and fate; ``GET /_posts`` each stored id's patients (root, extension).

    python tests/peers/storelog_service.py --port 8099 --failure-rate 0.3 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree
from tests.peers.rivta_stub import STORE, RivtaStub, envelope, fault, store_answer
from tests.peers.servers import Peer, _start, free_port

LOG = "urn:riv:informationsecurity:auditing:log:2"
FAILURES = ("503", "502", "reset", "lost")


class LogService:
    """The service's state; one lock around it (the server answers in threads)."""

    def __init__(self, failure_rate: float, seed: int, latency: float) -> None:
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.latency = latency
        self.checker = RivtaStub()  # its check(): headers, envelope, SOAPAction, XSD
        self.lock = threading.Lock()
        self.stored: dict[str, list[list[str]]] = {}  # logId -> patients [root, extension]
        self.duplicates: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.fates: Counter[str] = Counter()
        self.rejected: list[str] = []
        self.fail_next = 0
        self.hold_next: float | None = None

    def fate(self) -> str:
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "error"
            if self.random.random() < self.failure_rate:
                return self.random.choice(FAILURES)
            if self.hold_next is not None:
                return "held"
            return "ok"

    def store(self, request: etree._Element, fate: str) -> None:
        ids = []
        with self.lock:
            for post in request.findall(f"{{{STORE}}}log"):
                log_id = post.findtext(f"{{{LOG}}}logId") or ""
                ids.append(log_id)
                if log_id in self.stored:
                    self.duplicates[log_id] += 1
                    continue
                self.stored[log_id] = [
                    [p.findtext(f"{{{LOG}}}root") or "", p.findtext(f"{{{LOG}}}extension") or ""]
                    for p in post.findall(f".//{{{LOG}}}patient/{{{LOG}}}patientId")
                ]
            self.requests.append({"at": time.time(), "fate": fate, "ids": ids})

    def note(self, fate: str, request: etree._Element | None) -> None:
        ids = [] if request is None else [
            post.findtext(f"{{{LOG}}}logId") or "" for post in request.findall(f"{{{STORE}}}log")
        ]  # fmt: skip
        with self.lock:
            self.fates[fate] += 1
            if fate not in ("ok", "lost", "held"):
                self.requests.append({"at": time.time(), "fate": fate, "ids": ids})

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "distinct": len(self.stored),
                "duplicates": dict(self.duplicates),
                "fates": dict(self.fates),
                "rejected": list(self.rejected),
                "requests": list(self.requests),
            }


def serve(port: int, service: LogService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: requests carry personnummer

        def _json(self, answer: Any) -> None:
            data = json.dumps(answer).encode()
            self._send(200, "application/json", data)

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST, the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_stats":
                self._json(service.stats())
            elif path == "/_posts":
                with service.lock:
                    self._json(dict(service.stored))
            else:
                self._send(404, "text/plain", b"not found")

        def do_POST(self) -> None:
            split = urlsplit(self.path)
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if split.path == "/_fail":
                with service.lock:
                    service.fail_next = int(parse_qs(split.query)["count"][0])
                self._json({"fail_next": service.fail_next})
                return
            if split.path == "/_hold":
                with service.lock:
                    service.hold_next = float(parse_qs(split.query)["seconds"][0])
                self._json({"hold_next": service.hold_next})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            _, _, request, problems = service.checker.check(headers, data)
            time.sleep(service.latency)
            if problems or request is None:
                with service.lock:
                    service.rejected.append("; ".join(problems)[:500])
                self._send(500, "text/xml", fault("Client", "; ".join(problems)[:2000]))
                return
            fate = service.fate()
            service.note(fate, request)
            if fate == "reset":
                self._reset()
            elif fate == "503":
                self._send(503, "text/html", b"<html><body>Service Unavailable</body></html>")
            elif fate == "502":
                self._send(502, "text/html", b"<html><body>Bad Gateway</body></html>")
            elif fate == "error":
                answer = envelope(store_answer("ERROR", "Loggtjänsten kunde inte spara"))
                self._send(200, "text/xml; charset=UTF-8", answer)
            else:
                service.store(request, fate)
                if fate == "lost":
                    self._reset()
                    return
                if fate == "held":
                    with service.lock:
                        seconds, service.hold_next = service.hold_next or 0.0, None
                    time.sleep(seconds)
                with contextlib.suppress(OSError):  # a held answer's client may be gone
                    self._send(200, "text/xml; charset=UTF-8", envelope(store_answer("OK", None)))

        def finish(self) -> None:
            with contextlib.suppress(OSError):  # the socket was reset on purpose
                super().finish()

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


@contextmanager
def storelog_service(
    failure_rate: float = 0.0, seed: int = 0, latency: float = 0.0
) -> Iterator[Peer]:
    """The log service as its own process for the duration of the block (``/rivta``); run
    from the repository's root (``-m tests.peers.storelog_service``)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.peers.storelog_service",
        f"--port={port}",
        f"--failure-rate={failure_rate}",
        f"--seed={seed}",
        f"--latency={latency}",
    ]
    peer = _start(command, port, "/_stats", 30)
    try:
        yield peer
    finally:
        peer.stop()
        peer.log.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    service = LogService(args.failure_rate, args.seed, args.latency)
    serve(args.port, service).serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
