"""A FHIR-ish target that fails on purpose, run as a real process on loopback:

    python tests/peers/fault_target.py --port P --failure-rate 0.3 --seed N

It speaks just enough FHIR REST for delivery: conditional update and delete by identifier
(``PUT /T?identifier=s|v``, ``DELETE /T?identifier=s|v``), update/read/delete by id, create (``POST /T``, which duplicates
on purpose, as any server would) and search by identifier. Resources are JSON only.
A ``batch`` Bundle (``POST /``, https://hl7.org/fhir/R4/http.html#transaction) runs each entry
as its own request through the same code, and answers a batch-response with each entry's
status, location and etag (or its OperationOutcome).

At ``--failure-rate`` a data request meets one of FAULTS, drawn from ``random.Random(seed)``.
The ``*-after`` faults strike once the write is stored: the client cannot tell them from a
lost write, so only an idempotent client avoids duplicates. A batch meets them as a whole
request (a ``*-after`` fault once every entry is applied), and each of its entries may meet
one of ENTRY_FAULTS at the same rate: an entry's own error status, ``500-after`` once it is
stored.

Control API (never faulted):
- ``GET /_stats``: distinct identifiers stored, resources, successful writes, writes per
  identifier, identifiers held by more than one resource, faults injected per kind.
- ``POST /_fault?mode=M&count=N``: the next N data requests meet fault M (also ``400``,
  ``412``, ``422``, or ``none`` to let one through); calls queue up in order. With
  ``scope=entry``: the next N batch entries meet M (one of ENTRY_FAULTS, ``400``, ``412``,
  ``422`` or ``none``), a queue of their own.
- ``POST /_down?seconds=S[&mode=refuse|503]``: for S seconds refuse connections (the listening
  socket is closed and open connections dropped: "connection refused"), or with ``mode=503``
  answer every data request 503.
- ``GET /_log``: every data request received, as ``METHOD /path?query``, in order; a batch
  as ``POST / (batch of N)`` followed by each of its N entries the same way.
- ``GET /_stats`` also counts ``batches`` received and their ``entries``.
- ``POST /_reset``: forget everything.

Written raw on asyncio streams, not on a web framework, because resets, half answers and
slow bodies need the socket itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import time
from collections import Counter, deque
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FAULTS = (
    "500",
    "503",
    "429",
    "timeout",
    "reset",
    "slow-body",
    "reset-after",
    "500-after",
    "timeout-after",
)
FORCED_ONLY = ("400", "412", "422", "none")  # "none": a request let through
ENTRY_FAULTS = ("500", "503", "429", "500-after")  # what one entry of a batch may meet
ENTRY_FORCED = (*ENTRY_FAULTS, *FORCED_ONLY)
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found"}
REASONS |= {412: "Precondition Failed", 422: "Unprocessable Entity", 429: "Too Many Requests"}
REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}
Json = dict[str, Any]


def outcome(status: int, text: str) -> Json:
    code = "transient" if status >= 500 or status == 429 else "invalid"
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def split_token(token: str) -> tuple[str, str]:
    """``system|value`` with FHIR search escaping (``\\|``) undone."""
    parts, current, escaped = [], "", False
    for char in token:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "|" and not parts:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])


def tokens_of(resource: Json) -> list[tuple[str, str]]:
    return [
        (str(i.get("system", "")), str(i.get("value", "")))
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("value")
    ]


class Target:
    def __init__(self, failure_rate: float, seed: int, hang: float, slow: float) -> None:
        self.failure_rate, self.seed, self.hang, self.slow = failure_rate, seed, hang, slow
        self.reset()

    def reset(self) -> None:
        self.random = random.Random(self.seed)
        self.resources: dict[tuple[str, str], Json] = {}
        self.writes: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.forced: deque[str] = deque()
        self.forced_entries: deque[str] = deque()
        self.requests = 0
        self.batches = 0
        self.entries = 0
        self.log: list[str] = []
        self.next_id = 0
        self.down_503_until = 0.0

    def stats(self) -> Json:
        holders: Counter[str] = Counter()
        for (kind, _), resource in self.resources.items():
            for system, value in tokens_of(resource)[:1]:  # a resource counts by its first
                holders[f"{kind}?{system}|{value}"] += 1
        return {
            "distinct": len(holders),
            "resources": len(self.resources),
            "writes": sum(self.writes.values()),
            "per_identifier": dict(self.writes),
            "duplicates": sorted(k for k, n in holders.items() if n > 1),
            "faults": dict(self.faults),
            "requests": self.requests,
            "batches": self.batches,
            "entries": self.entries,
        }

    def pick_fault(self) -> str | None:
        if self.forced:
            forced = self.forced.popleft()
            return None if forced == "none" else forced
        if self.failure_rate and self.random.random() < self.failure_rate:
            return self.random.choice(FAULTS)
        return None

    def pick_entry_fault(self) -> str | None:
        if self.forced_entries:
            forced = self.forced_entries.popleft()
            return None if forced == "none" else forced
        if self.failure_rate and self.random.random() < self.failure_rate:
            return self.random.choice(ENTRY_FAULTS)
        return None

    def batch(self, body: bytes) -> tuple[int, Json]:
        """A ``batch`` Bundle: each entry its own request through :meth:`handle`, answered in
        a batch-response entry (https://hl7.org/fhir/R4/bundle.html#batch-response)."""
        try:
            bundle = json.loads(body)
        except ValueError:
            return 400, outcome(400, "the body is not JSON")
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return 400, outcome(400, "the body is not a Bundle")
        if bundle.get("type") != "batch":
            return 400, outcome(400, f"a {bundle.get('type')} Bundle is not supported here")
        self.batches += 1
        entries = bundle.get("entry") or []
        if self.log and self.log[-1] == "POST /":  # this request's line, logged just before
            self.log[-1] = f"POST / (batch of {len(entries)})"
        answers = []
        for entry in entries:
            request = (entry or {}).get("request") or {}
            method, url = str(request.get("method", "")), urlsplit(str(request.get("url", "")))
            path, query = "/" + url.path.lstrip("/"), dict(parse_qsl(url.query))
            self.entries += 1
            self.log.append(f"{method} {path}" + (f"?{urlencode(query)}" if query else ""))
            fault = self.pick_entry_fault()
            if fault:
                self.faults[f"entry:{fault}"] += 1
            if fault in ("500", "503", "429", "400", "412", "422"):
                status, answer = int(fault), outcome(int(fault), f"injected {fault} (entry)")
            elif path == "/":
                status, answer = 400, outcome(400, "a batch in a batch")
            else:
                headers = {"if-match": str(request["ifMatch"])} if request.get("ifMatch") else {}
                resource = entry.get("resource")
                data = b"" if resource is None else json.dumps(resource).encode()
                status, answer = self.handle(method, path, query, headers, data)  # stored now
                if fault == "500-after":
                    status, answer = 500, outcome(500, "injected 500 after the write (entry)")
            answers.append(entry_answer(method, status, answer))
        return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": answers}

    def matches(self, kind: str, system: str, value: str) -> list[Json]:
        return [
            r
            for (k, _), r in self.resources.items()
            if k == kind and (system, value) in tokens_of(r)
        ]

    def store(self, kind: str, rid: str | None, resource: Json) -> tuple[int, Json]:
        if rid is None:
            self.next_id += 1
            rid = f"ft{self.next_id}"
        old = self.resources.get((kind, rid))
        version = int((old or {}).get("meta", {}).get("versionId", "0")) + 1
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        stored = {**resource, "id": rid, "meta": {"versionId": str(version), "lastUpdated": now}}
        self.resources[(kind, rid)] = stored
        for system, value in tokens_of(stored)[:1]:
            self.writes[f"{kind}?{system}|{value}"] += 1
        return (200 if old else 201), stored

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, Json | None]:
        """The FHIR part: (status, body). Writes happen here and only here."""
        parts = [p for p in path.split("/") if p]
        if method == "POST" and not parts:
            return self.batch(body)
        if not parts or not parts[0].isalpha() or len(parts) > 2:
            return 404, outcome(404, f"no route {method} {path}")
        kind, rid = parts[0], (parts[1] if len(parts) == 2 else None)
        resource: Json = {}
        if method in ("PUT", "POST"):
            try:
                resource = json.loads(body)
            except ValueError:
                return 400, outcome(400, "the body is not JSON")
            if not isinstance(resource, dict) or resource.get("resourceType") != kind:
                return 400, outcome(400, f"the body is not a {kind}")
            if "id" in resource and not str(resource["id"]).replace("-", "").isalnum():
                return 400, outcome(400, "invalid id")
        if method == "GET" and rid:
            found = self.resources.get((kind, rid))
            return (200, found) if found else (404, outcome(404, f"{kind}/{rid} not found"))
        if method == "GET":
            hits = (
                self.matches(kind, *split_token(query["identifier"]))
                if "identifier" in query
                else [r for (k, _), r in self.resources.items() if k == kind]
            )
            entries = [{"resource": r, "search": {"mode": "match"}} for r in hits]
            return 200, {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(hits),
                "entry": entries,
            }
        if method == "DELETE" and not rid and "identifier" in query:
            hits = self.matches(kind, *split_token(query["identifier"]))
            if len(hits) > 1:
                return 412, outcome(412, f"{len(hits)} resources match")
            for hit in hits:
                del self.resources[(kind, hit["id"])]
            return 204, None
        if method == "DELETE" and rid:
            if self.resources.pop((kind, rid), None) is None:
                return 404, outcome(404, f"{kind}/{rid} not found")
            return 204, None
        if method == "POST" and not rid:
            return self.store(kind, None, resource)
        if method == "PUT" and rid:
            current = self.resources.get((kind, rid))
            wanted = headers.get("if-match", "").removeprefix("W/").strip('"')
            if wanted and (not current or current["meta"]["versionId"] != wanted):
                return 412, outcome(412, "version conflict")
            if resource.get("id") != rid:
                return 400, outcome(400, "the body's id differs from the URL's")
            return self.store(kind, rid, resource)
        if method == "PUT" and "identifier" in query:
            system, value = split_token(query["identifier"])
            if (system, value) not in tokens_of(resource):
                return 400, outcome(400, "the resource does not carry the identifier searched")
            hits = self.matches(kind, system, value)
            if len(hits) > 1:
                return 412, outcome(412, f"{len(hits)} resources match")
            existing = hits[0]["id"] if hits else None
            if resource.get("id") and existing and resource["id"] != existing:
                return 400, outcome(400, "the body's id differs from the match")
            return self.store(kind, existing, {k: v for k, v in resource.items() if k != "id"})
        return 405, outcome(405, f"{method} {path} is not supported here")


def entry_answer(method: str, status: int, answer: Json | None) -> Json:
    """A batch-response entry: the status, and the location and etag of what was stored
    (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.response), the
    OperationOutcome of a refusal, or what a read found."""
    response: Json = {"status": f"{status} {REASONS.get(status, 'Status')}"}
    entry: Json = {"response": response}
    if answer and answer.get("resourceType") == "OperationOutcome":
        response["outcome"] = answer
    elif method == "GET" and answer:
        entry["resource"] = answer
    elif answer and answer.get("meta", {}).get("versionId"):
        version = answer["meta"]["versionId"]
        response["location"] = f"{answer['resourceType']}/{answer['id']}/_history/{version}"
        response["etag"] = f'W/"{version}"'
        response["lastModified"] = answer["meta"]["lastUpdated"]
    return entry


def encode(status: int, body: Json | None, extra: dict[str, str] | None = None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    headers = {"Content-Type": "application/fhir+json", "Content-Length": str(len(payload))}
    if body and body.get("meta", {}).get("versionId"):
        headers["ETag"] = f'W/"{body["meta"]["versionId"]}"'
    headers |= extra or {}
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER 0 makes the kernel drop the connection at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Server:
    def __init__(self, target: Target, port: int) -> None:
        self.target, self.port = target, port
        self.listener: asyncio.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()

    async def listen(self) -> None:
        self.listener = await asyncio.start_server(self.serve, "127.0.0.1", self.port)

    async def go_down(self, seconds: float) -> None:
        """Refuse connections for a while: no listener, no open connection."""
        await asyncio.sleep(0.05)  # let the /_down answer leave first
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for writer in list(self.connections):
            writer.transport.abort()
        await asyncio.sleep(seconds)
        await self.listen()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.connections.discard(writer)
            writer.transport.abort()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in header_lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        url = urlsplit(target)
        query = dict(parse_qsl(url.query))
        keep = headers.get("connection", "").lower() != "close"
        if url.path.startswith("/_"):
            writer.write(self.control(url.path, query))
            await writer.drain()
            return keep
        return await self.data(method, url.path, query, headers, body, writer) and keep

    def control(self, path: str, query: dict[str, str]) -> bytes:
        target = self.target
        if path == "/_stats":
            return encode(200, target.stats())
        if path == "/_log":
            return encode(200, {"requests": target.log})
        if path == "/_reset":
            target.reset()
            return encode(200, {"reset": True})
        if (
            path == "/_fault"
            and query.get("scope") == "entry"
            and query.get("mode") in ENTRY_FORCED
        ):
            target.forced_entries.extend([query["mode"]] * int(query.get("count", "1")))
            return encode(200, {"forced_entries": list(target.forced_entries)})
        if path == "/_fault" and query.get("mode") in FAULTS + FORCED_ONLY:
            target.forced.extend([query["mode"]] * int(query.get("count", "1")))
            return encode(200, {"forced": list(target.forced)})
        if path == "/_down":
            seconds = float(query.get("seconds", "10"))
            if query.get("mode") == "503":
                target.down_503_until = time.monotonic() + seconds
            else:
                asyncio.get_running_loop().create_task(self.go_down(seconds))
            return encode(200, {"down_for": seconds, "mode": query.get("mode", "refuse")})
        return encode(404, outcome(404, f"no control {path}"))

    async def data(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """One faultable request; False when the connection is gone."""
        target = self.target
        target.requests += 1
        target.log.append(f"{method} {path}" + (f"?{urlencode(query)}" if query else ""))
        if time.monotonic() < target.down_503_until:
            writer.write(encode(503, outcome(503, "down for maintenance")))
            await writer.drain()
            return True
        fault = target.pick_fault()
        if fault:
            target.faults[fault] += 1
        if fault in ("500", "503", "400", "412", "422"):
            status = int(fault)
            writer.write(encode(status, outcome(status, f"injected {fault}")))
            await writer.drain()
            return True
        if fault == "429":
            writer.write(encode(429, outcome(429, "slow down"), {"Retry-After": "1"}))
            await writer.drain()
            return True
        if fault == "reset":
            reset_connection(writer)
            return False
        if fault == "timeout":
            await asyncio.sleep(target.hang)
            return False
        status, answer = target.handle(method, path, query, headers, body)  # stored now
        if fault == "reset-after":
            reset_connection(writer)
            return False
        if fault == "timeout-after":
            await asyncio.sleep(target.hang)
            return False
        if fault == "500-after":
            writer.write(encode(500, outcome(500, "injected 500 after the write")))
            await writer.drain()
            return True
        data = encode(status, answer)
        if fault == "slow-body":
            # Headers at once, then the body in pieces: slow, but each piece within a read timeout.
            split = data.index(b"\r\n\r\n") + 4
            cuts = [min(c, len(data)) for c in (0, split, split + 16, split + 32, split + 48)]
            chunks = [data[a:b] for a, b in pairwise([*cuts, len(data)]) if b > a]
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(target.slow)
            return True
        writer.write(data)
        await writer.drain()
        return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=5.0, help="a timeout's length")
    parser.add_argument("--slow-seconds", type=float, default=0.2, help="pause per body piece")
    args = parser.parse_args()
    server = Server(
        Target(args.failure_rate, args.seed, args.hang_seconds, args.slow_seconds), args.port
    )
    await server.listen()
    print(f"fault target listening on http://127.0.0.1:{args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
