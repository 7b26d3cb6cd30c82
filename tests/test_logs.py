"""Logs are JSON lines, and no personnummer reaches them, whoever logs it and however."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from reko_fhir.logs import configure_logging


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def test_structlog_and_stdlib_lines_are_json_with_patient_numbers_masked(
    log_lines: io.StringIO,
) -> None:
    structlog.get_logger("reko_fhir.test").info(
        "delivery.failed", patient="19780412-2385", url="/Patient?identifier=197804122385"
    )
    logging.getLogger("reko_fhir.access").warning("GET /Patient?identifier=%s", "191212121212")
    try:
        raise ValueError("no match for 20121212-1212")
    except ValueError:
        structlog.get_logger("reko_fhir.test").exception("failed")
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [line["event"].split(" ")[0] for line in lines] == ["delivery.failed", "GET", "failed"]
    assert [line["level"] for line in lines] == ["info", "warning", "error"]
    text = json.dumps(lines)
    for number in ("2385", "191212121212", "20121212-1212"):
        assert number not in text
    assert "19780412-****" in text
    assert "19121212-****" in text
    assert "ValueError" in lines[2]["exception"]
