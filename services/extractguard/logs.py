"""Structured logging for every service: structlog, JSON lines unless a terminal is attached.

Bind `topic`, `partition`, `offset`, `account` where they exist. Prompt text never reaches a log:
the pipeline never has it.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    pretty = sys.stderr.isatty() and os.environ.get("EXTRACTGUARD_LOG_FORMAT", "") != "json"
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger(service=service)
