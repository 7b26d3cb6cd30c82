"""Issue 15's speed table in one run: every row as a ratio against its baseline, beside its goal.

Run by hand: ``python bench/speed.py [--rows 1000000] [--seconds 10] [--messages 5000]``;
a quick run: ``--rows 100000 --seconds 3 --messages 2000 --count 1000``. Not a test.

Each row comes from the bench that measures it, run here as a command (a subprocess, so this
report depends on what the benches print, not on their insides): a bench that has ``--json``
in its ``--help`` is asked for a last line of JSON, else its text table is read. Every ratio
is taken against a baseline measured in the same run of the same bench (the machine is shared
and noisy: absolute figures mean little, ratios do). A row whose bench is missing, or whose
output holds no such row, says "not measured" instead of failing the report.

Rows (the table of issue 15):

- profile validation, 5,000 Procedures (the CLI path) vs fhir.resources ``model_validate_json``
  of the same NDJSON — ``bench/validate_ndjson.py``;
- validated ``POST /Procedure`` vs ``GET /metadata``, and committed resources/s in case
  transaction Bundles vs ``GET /metadata`` requests/s (SQLite, the default) — ``bench/api.py``;
- transaction Bundles' p99 on PostgreSQL vs SQLite (same run) — ``bench/api.py``;
- outbox deliveries/s vs direct conditional PUTs/s to the same target — ``bench/delivery.py``,
  one request a message and in ``--batch`` Bundles (the row's label names the mode it took);
- patient search p99 vs ``GET /metadata`` p99 with ``--rows`` Procedures stored, on SQLite and
  on PostgreSQL — ``bench/api.py`` (the case's patient with its few Procedures, and again after
  the writes gave it hundreds more: the worse of the two counts).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
NOT_MEASURED = "not measured"
PARTS = {"validate_ndjson.py": "validation", "api.py": "api", "delivery.py": "delivery"}
SKIPPED: set[str] = set()
"""Parts (``--skip``) not run: their rows say "not measured"."""


@dataclass(frozen=True)
class Row:
    measure: str
    figures: str  # what was measured, in the bench's own units
    ratio: float | None
    goal: str
    met: bool | None

    def markdown(self) -> str:
        ratio = NOT_MEASURED if self.ratio is None else f"{self.ratio:.2f}"
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        return f"| {self.measure} | {self.figures} | {ratio} | {self.goal} | {met} |"


def run(script: str, arguments: list[str], timeout: float) -> tuple[str, dict[str, Any] | None]:
    """The text a bench printed and its JSON line (when it has ``--json``); ("", None) when the
    bench is missing or failed (its error goes to stderr)."""
    path = BENCH / script
    if PARTS[script] in SKIPPED:
        print(f"speed: {script} skipped", file=sys.stderr)
        return "", None
    if not path.is_file():
        print(f"speed: {script} does not exist", file=sys.stderr)
        return "", None
    command = [sys.executable, str(path), *arguments]
    helped = subprocess.run([*command[:2], "--help"], capture_output=True, text=True, check=False)
    wants_json = "--json" in helped.stdout
    if wants_json:
        command.append("--json")
    print(f"speed: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"speed: {script} took over {timeout:.0f} s", file=sys.stderr)
        return "", None
    print(f"speed: {script} took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if done.returncode != 0:
        print(f"speed: {script} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return "", None
    # The bench's own report, for the record (its JSON line left out).
    shown = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    print("\n".join(shown), file=sys.stderr, flush=True)
    found = None
    if wants_json:
        for line in reversed(done.stdout.splitlines()):
            if line.startswith("{"):
                found = json.loads(line)
                break
    return done.stdout, found


def at_least(ratio: float | None, goal: float) -> bool | None:
    return None if ratio is None else ratio >= goal


def at_most(ratio: float | None, goal: float) -> bool | None:
    return None if ratio is None else ratio <= goal


# -- validation ------------------------------------------------------------------------------
def validation(args: argparse.Namespace) -> list[Row]:
    """``reko-fhir validate`` (CLI path) vs ``model_validate_json``: resources/s, one core."""
    text, found = run("validate_ndjson.py", ["--count", str(args.count)], args.timeout)
    ours = models = None
    if found is not None:
        ours, models = found.get("reko"), found.get("baseline")
    else:
        for line in text.splitlines():
            numbers = re.findall(r"\s([\d.]+)", line)
            if line.startswith("fhir.resources") and numbers:
                models = float(numbers[-2])
            elif line.startswith("reko-fhir") and numbers:
                ours = float(numbers[-2])
    ratio = ours / models if ours and models else None
    figures = f"{ours:,.0f} vs {models:,.0f} resources/s" if ratio else NOT_MEASURED
    goal = "≥ 1.0 (at least as fast)"
    measure = f"profile validation, {args.count:,} Procedures (CLI) vs `model_validate_json`"
    return [Row(measure, figures, ratio, goal, at_least(ratio, 1.0))]


# -- the API ---------------------------------------------------------------------------------
def api_rows(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every row of bench/api.py per database (``sqlite``, ``postgresql``)."""
    arguments = ["--rows", str(args.rows), "--seconds", str(args.seconds)]
    text, found = run("api.py", arguments, args.timeout)
    if found is not None:
        databases: dict[str, list[dict[str, Any]]] = found["databases"]
        return databases
    parsed: dict[str, list[dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():  # the text table: label, rate, ratio, p50, p99
        if line.startswith(("SQLite", "PostgreSQL")):
            rows = parsed.setdefault(line.split()[0].lower().rstrip(":"), [])
        elif match := re.match(r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", line):
            label, rate, _, p50, p99 = match.groups()
            rows.append({"label": label, "rate": float(rate), "p50": float(p50), "p99": float(p99)})
    return parsed


def _row(rows: list[dict[str, Any]], *starts: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["label"].startswith(starts)), None)


def api(args: argparse.Namespace) -> list[Row]:
    databases = api_rows(args)
    sqlite, postgresql = databases.get("sqlite", []), databases.get("postgresql", [])
    found: list[Row] = []
    base = _row(sqlite, "GET /metadata")
    write = _row(sqlite, "validated")
    ratio = write["rate"] / base["rate"] if write and base else None
    figures = f"{write['rate']:,.0f}/s vs {base['rate']:,.0f}/s" if write and base else ""
    measure = "validated `POST /Procedure` vs `GET /metadata` (SQLite)"
    found.append(Row(measure, figures or NOT_MEASURED, ratio, "≥ 0.5", at_least(ratio, 0.5)))

    bundles = _row(sqlite, "case Bundles, new")
    ratio = bundles["rate"] / base["rate"] if bundles and base else None
    figures = f"{bundles['rate']:,.0f} vs {base['rate']:,.0f}" if bundles and base else ""
    measure = "committed resources/s in case Bundles vs `GET /metadata` req/s (SQLite)"
    found.append(Row(measure, figures or NOT_MEASURED, ratio, "≥ 1.0", at_least(ratio, 1.0)))

    on_pg = _row(postgresql, "case Bundles, new")
    ratio = on_pg["p99"] / bundles["p99"] if on_pg and bundles else None
    figures = f"p99 {on_pg['p99']:,.0f} vs {bundles['p99']:,.0f} ms" if on_pg and bundles else ""
    measure = "transaction Bundles' p99, PostgreSQL vs SQLite (same run)"
    found.append(Row(measure, figures or NOT_MEASURED, ratio, "≤ 1.5", at_most(ratio, 1.5)))

    for name, rows in (("SQLite", sqlite), ("PostgreSQL", postgresql)):
        found.append(_search_row(name, rows, args.rows))
    return found


def _search_row(name: str, rows: list[dict[str, Any]], stored: int) -> Row:
    """Patient search p99 over ``GET /metadata`` p99: the worse of the two searches."""
    base = _row(rows, "GET /metadata")
    searches = [r for r in rows if r["label"].startswith("patient search")]
    measure = f"patient search p99 vs `GET /metadata` p99, {stored:,} Procedures, {name}"
    if base is None or not searches:
        return Row(measure, NOT_MEASURED, None, "≤ 1.5", None)
    worst = max(searches, key=lambda r: r["p99"])
    ratio = worst["p99"] / base["p99"]
    each = ", ".join(f"{r['p99']:.0f}" for r in searches)
    matches = ", ".join(r["label"].removeprefix("patient search,").strip() for r in searches)
    figures = f"{each} vs {base['p99']:.0f} ms ({matches})"
    return Row(measure, figures, ratio, "≤ 1.5", at_most(ratio, 1.5))


# -- delivery --------------------------------------------------------------------------------
def delivery(args: argparse.Namespace) -> list[Row]:
    """The outbox's best deliveries/s (any worker count, one request a message or in
    ``--batch`` Bundles) over direct conditional PUTs/s; the label names the mode that won."""
    arguments = ["--messages", str(args.messages)]
    if args.batch:
        arguments += ["--batch", str(args.batch)]
    text, found = run("delivery.py", arguments, args.timeout)
    best: dict[str, float] = {}  # mode -> best ratio; a line names its mode, "(batch N)"
    for line in text.splitlines():
        ratio_at = re.search(r"ratio ([\d.]+)", line)
        if line.startswith("before") or not ratio_at:
            continue
        mode_at = re.match(r"after \((batch \d+)\)", line)
        mode = mode_at.group(1) if mode_at else "single"
        best[mode] = max(best.get(mode, 0.0), float(ratio_at.group(1)))
    if found is not None and "ratio" in found:  # a bench that says only one ratio: no mode
        best = {"single": float(found["ratio"])}
    measure = "outbox deliveries/s vs direct conditional PUTs/s (same target)"
    if not best:
        return [Row(measure, NOT_MEASURED, None, "≥ 0.8", None)]
    mode = max(best, key=lambda m: best[m])
    if mode != "single":
        measure = f"outbox deliveries/s ({mode}) vs direct conditional PUTs/s (same target)"
    others = ", ".join(f"{m} {r:.2f}" for m, r in best.items() if m != mode)
    figures = f"{args.messages:,} messages" + (f"; {others}" if others else "")
    return [Row(measure, figures, best[mode], "≥ 0.8", at_least(best[mode], 0.8))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="Procedures stored (api)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per api row")
    parser.add_argument("--count", type=int, default=5000, help="Procedures validated")
    parser.add_argument("--messages", type=int, default=5000, help="outbox backlog (delivery)")
    parser.add_argument(
        "--batch",
        type=int,
        default=50,
        help="delivery also in FHIR batch Bundles of up to N writes (0: one request a message)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a bench may take")
    parser.add_argument(
        "--skip", default="", help="comma list of validation, api, delivery: rows not measured"
    )
    args = parser.parse_args()
    SKIPPED.update(args.skip.split(","))
    rows = [*validation(args), *api(args), *delivery(args)]
    print("\n| measure | measured | ratio | goal | met |\n|---|---|---|---|---|")
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()
