"""Structured JSON logs (structlog) with every personnummer masked, whoever logged it.

The masking runs as the last processor, on the rendered line, so neither a field nor an
exception text can carry a patient number to the log (patientdatalagen).
"""

from __future__ import annotations

import logging
from typing import Any, TextIO

import structlog

from reko_fhir.domain import mask_patient_ids


def _mask(_logger: object, _name: str, line: Any) -> str:
    return mask_patient_ids(str(line))


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr) for structlog and the standard library alike."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
            _mask,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; conditional updates carry identifiers in them.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
