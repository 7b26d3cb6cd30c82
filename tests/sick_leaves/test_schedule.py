"""The sick-leave schedule inside a real ``reko-fhir worker`` and a real ``reko-fhir serve``.

A round that fails is logged with the unit and counts (never a patient) and the next round
imports; the worker stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx

from reko_fhir.mapping import worklist as wl
from tests.peers.rivta_stub import DIAGNOSES, RivtaStub
from tests.peers.sick_leave_feed import Generator, PlannedSickLeave, feed_xml
from tests.service import start_service
from tests.sick_leaves.conftest import assert_no_diagnosis, national_file, run_cli

UNIT = "SE2321000016-F0A1"


def small_feed(count: int = 5) -> list[PlannedSickLeave]:
    generator = Generator(7, date.today())
    return [generator.sick_leave(UNIT, generator.personnummer(), "in-window") for _ in range(count)]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)


def test_a_worker_imports_on_its_schedule_and_retries_a_failed_round(
    tmp_path: Path, stub: RivtaStub
) -> None:
    plan = small_feed()
    stub.feed = feed_xml(plan)
    stub.mode = "fault"
    schedule = {"interval_seconds": 1, "units": [UNIT], "runs_in": "worker"}
    path = national_file(tmp_path, stub.url, [UNIT], schedule=schedule)
    env = {"REKO_NATIONAL_FILE": str(path), "REKO_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "worker.log"
    with log.open("wb") as errors:
        worker = subprocess.Popen(
            [sys.executable, "-m", "reko_fhir", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        wait_for(lambda: len(stub.exchanges) >= 1, "the first round")
        stub.mode = "ok"
        wait_for(lambda: sum(e.mode == "ok" for e in stub.exchanges) >= 2, "two good rounds")
        # The stub sees a round's request before the worker has stored and logged its import:
        # wait for the second round's log line, not only its request, before stopping it.
        wait_for(
            lambda: log.read_text(encoding="utf-8").count('"sick_leaves.imported"') >= 2,
            "two imports logged",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert code == 0
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    (failed, *_) = [x for x in lines if x["event"] == "sick_leaves.scheduled_import_failed"]
    assert failed["unit"] == UNIT
    assert failed["exit_code"] == 1
    assert "SOAP fault" in failed["reason"]
    rounds = [x for x in lines if x["event"] == "sick_leaves.round"]
    assert (rounds[0]["imported"], rounds[0]["failed"]) == (0, 1)
    assert any(r["imported"] == 1 for r in rounds[1:])
    imported = [x for x in lines if x["event"] == "sick_leaves.imported"]
    assert imported[0]["created"] == len(plan)
    assert imported[1]["created"] == 0
    assert imported[1]["unchanged"] == len(plan)
    text = log.read_text(encoding="utf-8")
    assert_no_diagnosis(text, "the worker's log")
    assert all(p.patient not in text for p in plan)
    # What the worker imported is the unit's worklist.
    shown = run_cli("worklist", "--unit", UNIT, "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert sorted(r["patient"].replace("-", "") for r in json.loads(shown.stdout)) == sorted(
        p.patient for p in plan
    )


def test_serve_imports_on_its_schedule(tmp_path: Path, stub: RivtaStub) -> None:
    plan = small_feed(3)
    stub.feed = feed_xml(plan)
    schedule = {"interval_seconds": 1, "units": [UNIT], "runs_in": "serve"}
    path = national_file(tmp_path, stub.url, [UNIT], schedule=schedule)
    service = start_service(tmp_path / "data", {"REKO_NATIONAL_FILE": str(path)})
    headers = service.headers(service.token("user/*.cruds", unit=UNIT))

    def requested() -> int:
        answer = httpx.get(
            f"{service.base}/Task",
            params={"status": "requested", "code": wl.TASK_TOKEN, "_summary": "count"},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        total: int = answer.json()["total"]
        return total

    try:
        wait_for(lambda: requested() == len(plan), "serve's first round")
        wait_for(lambda: len(stub.exchanges) >= 2, "a second round")
    finally:
        service.process.terminate()
        service.process.wait(timeout=30)
    text = service.log.read_text(encoding="utf-8")
    assert '"sick_leaves.imported"' in text
    assert all(d not in text for d in DIAGNOSES)
    assert all(p.patient not in text for p in plan)
