"""Benchmark: peak memory of ``reko-fhir validate`` on NDJSON files of growing size.

Run by hand: ``python bench/validate_memory.py [--records 2000] [--factor 4]``. Two NDJSON files
of the same resource (the valid fixture Procedure), ``records`` and ``records × factor`` lines,
are each validated by the CLI in a fresh process (``--report json --output``); its peak RSS is
read from ``getrusage``. Baseline in the same run: a process that only reads the same file into
a list of resources (what ``validate`` did before it streamed). Flat memory means the
validator's ratio large/small stays near 1.00 while the baseline's grows with the file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCE = ROOT / "fixtures" / "valid" / "procedure-no-diagnosis.json"
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False,"
    " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
    " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
READ_ALL = "import json, sys; rs = [json.loads(line) for line in open(sys.argv[1])]; print(len(rs))"


def peak_kb(command: list[str]) -> int:
    """Peak RSS in KiB of ``command`` run alone in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--factor", type=int, default=4)
    args = parser.parse_args()
    line = json.dumps(json.loads(RESOURCE.read_text(encoding="utf-8"))) + "\n"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for count in (args.records, args.records * args.factor):
            path = Path(folder) / f"{count}.ndjson"
            path.write_text(line * count, encoding="utf-8")
            report = Path(folder) / "report.json"
            cli = [sys.executable, "-m", "reko_fhir", "validate", str(path)]
            ours = peak_kb([*cli, "--report", "json", "--output", str(report)])
            summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
            assert summary["resources"] == count, summary
            baseline = peak_kb([sys.executable, "-c", READ_ALL, str(path)])
            rows.append((count, path.stat().st_size, ours, baseline))
    print(f"{'records':>8} {'MB':>7} {'validate peak MB':>17} {'read-all peak MB':>17}")
    for count, size, ours, baseline in rows:
        print(f"{count:>8} {size / 1e6:>7.1f} {ours / 1024:>17.1f} {baseline / 1024:>17.1f}")
    (_, _, small, base_small), (_, _, large, base_large) = rows
    print(
        f"ratio large/small: validate {large / small:.2f}, read-all (baseline)"
        f" {base_large / base_small:.2f}"
    )


if __name__ == "__main__":
    main()
