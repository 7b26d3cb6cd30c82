"""Benchmark: ``reko-fhir validate`` on an NDJSON file of Procedures, beside fhir.resources.

Run by hand: ``python bench/validate_ndjson.py [--count 5000] [--rounds 1]``. Both sides read
the same NDJSON file, measured in the same run:

- baseline: ``Procedure.model_validate_json`` of each line (fhir.resources: types and
  cardinality of the base spec only);
- reko-fhir: what the CLI does with the file (``cli_validate._validate_all``: streamed lines,
  every reko profile check, the text report written to nowhere).

The Procedures are the fixture ones (fixtures/valid, fixtures/mapping), varied in id,
identifier, dates, notes and codes. Figures are resources per second; the ratio is reko-fhir's
rate over the baseline's (above 1.0: reko-fhir is faster). ``--clock process`` times each side
by this process's CPU time (time.process_time) instead of the wall clock: both sides run in
this one thread, so on a shared, busy machine that is the fairer measure.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fhir.resources.R4B.procedure import Procedure

from reko_fhir.cli_validate import _validate_all
from reko_fhir.validation.report_writers import WRITERS
from reko_fhir.validation.service import ValidationService, reko_definitions

ROOT = Path(__file__).resolve().parent.parent
_CODES = ("GC001", "DV077", "AW026")


def fixture_procedures() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((ROOT / "fixtures" / "valid").glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") == "Procedure":
            found.append(resource)
    for case in sorted((ROOT / "fixtures" / "mapping").iterdir()):
        bundle = json.loads((case / "expected.json").read_text(encoding="utf-8"))
        found += [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure"
        ]
    return found


def varied(templates: list[dict[str, Any]], count: int, seed: int = 15) -> list[dict[str, Any]]:
    """``count`` Procedures, each a fixture one with its own id, identifier, date and note."""
    rng = random.Random(seed)  # noqa: S311 - varied test data, not secrets
    out = []
    for n in range(count):
        resource = copy.deepcopy(templates[n % len(templates)])
        resource["id"] = f"p{n:06d}"
        for identifier in resource.get("identifier", []):
            identifier["value"] = f"J-{rng.randrange(10**6):06d}"
        if "performedDateTime" in resource:
            day = rng.randrange(1, 28)
            resource["performedDateTime"] = (
                f"2025-{rng.randrange(1, 13):02d}-{day:02d}T09:00:00+02:00"
            )
        for note in resource.get("note", []):
            note["text"] = f"Anteckning {n}"
        coding = (resource.get("code") or {}).get("coding") or []
        if coding and coding[0].get("code") in _CODES and coding[0]["code"] != "GC001":
            coding[0]["code"] = rng.choice(_CODES[1:])
        out.append(resource)
    return out


_CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
clock = time.perf_counter


def baseline(path: Path) -> float:
    start = clock()
    n = 0
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                Procedure.model_validate_json(line)
                n += 1
    return n / (clock() - start)


def reko(path: Path, service: ValidationService) -> tuple[float, str]:
    out = io.StringIO()
    writer = WRITERS["text"](out, "group")
    start = clock()
    _validate_all([(path, False)], service, None, writer)
    elapsed = clock() - start
    totals = writer.finish()
    return totals.resources / elapsed, totals.line()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs; best of each")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="wall")
    args = parser.parse_args()
    global clock  # noqa: PLW0603 - one setting for the whole run
    clock = _CLOCKS[args.clock]
    resources = varied(fixture_procedures(), args.count)
    service = ValidationService(reko_definitions())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "procedures.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
        # Warm up: profiles compiled, fhir.resources' classes built (start-up is not measured).
        for r in resources[:50]:
            service.validate(r)
            Procedure.model_validate_json(json.dumps(r))
        models, ours, line = 0.0, 0.0, ""
        for _ in range(args.rounds):
            models = max(models, baseline(path))
            rate, line = reko(path, service)
            ours = max(ours, rate)
    print(
        f"{args.count} Procedures as NDJSON, reko profiles, {args.clock} clock; {line}",
        file=sys.stderr,
    )
    print(f"{'validator':58} {'resources/s':>12} {'ratio':>7}")
    print(f"{'fhir.resources (R4B) Procedure.model_validate_json':58} {models:12.0f} {1:7.2f}")
    print(
        f"{'reko-fhir validate (NDJSON, CLI path, all checks)':58} {ours:12.0f} {ours / models:7.2f}"
    )


if __name__ == "__main__":
    main()
