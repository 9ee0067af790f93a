"""No personal data in logs: a logging filter that masks ID numbers and mobile numbers in
every record of the server's loggers (an access log line carries the query string, e.g. an
auditor's search by ID number). Masks as in §10.4 of the domain rules."""

from __future__ import annotations

import logging
import re

from .domain import mask_id, mask_phone

# 18-digit ID numbers (last character a digit or X), legacy 15-digit ones, mainland mobiles.
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "healthgrid", "sqlalchemy.engine")


def redact(text: str) -> str:
    text = _ID18.sub(lambda m: mask_id(m.group(1)), text)
    text = _ID15.sub(lambda m: mask_id(m.group(1)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Idempotent: adds the filter to the server's loggers and their handlers."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
