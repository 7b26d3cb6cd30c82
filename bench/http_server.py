"""Benchmark: uvicorn's HTTP parsers under the service, ``GET /metadata`` on loopback.

Run by hand: ``.venv/bin/python bench/http_server.py [--seconds 5] [--rounds 2]``. Not a test.
``reko-fhir serve`` runs the pure-Python h11 parser (it lets an over-long URL reach the app and
get a 414 OperationOutcome, where httptools answers in plain text); this measures what that
costs against httptools, the baseline, alternating the two in one run on a fresh store each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx

PARSERS = ("httptools", "h11")  # the first is the baseline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def rate(port: int, seconds: float, concurrency: int) -> float:
    """Requests per second of ``concurrency`` clients asking for ``/metadata``."""
    done = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                (await client.get("/metadata")).raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


def serve(parser: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "reko_fhir.api.app:create_app", "--factory",
        "--port", str(port), "--no-access-log", "--log-level", "warning", "--http", parser,
    ]  # fmt: skip
    env = {**os.environ, "REKO_DATA_DIR": data_dir}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"uvicorn --http {parser} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in PARSERS}
    for _ in range(args.rounds):
        for name in PARSERS:
            process = serve(name, port := free_port(), tempfile.mkdtemp())
            try:
                rates[name].append(asyncio.run(rate(port, args.seconds, args.concurrency)))
            finally:
                process.terminate()
                process.wait()
    baseline = sum(rates[PARSERS[0]]) / len(rates[PARSERS[0]])
    print(f"GET /metadata, 1 worker, {args.concurrency} clients, {args.seconds:g} s a round")
    for name, found in rates.items():
        mean = sum(found) / len(found)
        rounds = ", ".join(f"{r:.0f}" for r in found)
        print(f"  {name:10} {mean:7.0f} req/s  ratio {mean / baseline:.3f}  (rounds: {rounds})")


if __name__ == "__main__":
    main()
