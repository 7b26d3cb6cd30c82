"""Benchmark: journal export → domain → FHIR transaction Bundle → bytes, per fixture format.

Run by hand: ``python bench/mapping.py [--seconds 2]``. Not a test: it prints figures and their
ratio to a baseline measured in the same run (parsing the same export with the standard
library), so numbers stay comparable across machines.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from lxml import etree

from reko_fhir.formats import dump_json, dump_xml
from reko_fhir.mapping import case_to_bundle
from reko_fhir.mapping.journal import load_mapping, map_export

ROOT = Path(__file__).resolve().parent.parent


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    work()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        calls += 1
    return calls / elapsed


def baseline_for(suffix: str, data: bytes) -> Callable[[], object]:
    if suffix == ".json":
        return lambda: json.loads(data)
    if suffix == ".xml":
        return lambda: etree.fromstring(data)
    return lambda: list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    print(f"{'input':58} {'parse/s':>9} {'domain/s':>9} {'bundle/s':>9} {'json/s':>8} {'xml/s':>7}")
    for path in sorted((ROOT / "fixtures" / "mapping").glob("*/input.*")):
        data = path.read_bytes()
        spec = load_mapping(ROOT / "mappings" / f"{path.name.split('.')[1]}.yaml")
        (case,) = map_export(spec, data, path.name).cases
        bundle = case_to_bundle(case)
        base = rate(baseline_for(path.suffix, data), args.seconds)
        figures = [
            rate(partial(map_export, spec, data, path.name), args.seconds),
            rate(partial(case_to_bundle, case), args.seconds),
            rate(partial(dump_json, bundle), args.seconds),
            rate(partial(dump_xml, bundle), args.seconds),
        ]
        name = f"{path.parent.name}/{path.name}"
        shown = " ".join(f"{f:9.0f}" for f in figures)
        print(f"{name:58} {base:9.0f} {shown}")
        print(
            f"{'  ratio to parsing the export alone':58} {1:9.2f} "
            + " ".join(f"{f / base:9.4f}" for f in figures)
        )


if __name__ == "__main__":
    main()
