"""Structured logs for `crmsync serve`: one JSON object per line on stderr.

Each record keeps its extra fields (rep, duration, writes ...). Secrets never reach a log
by construction (the code logs no credentials); as a second line of defence, any value
registered with `redact` is masked in every message and field.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_secrets: set[str] = set()
_lock = threading.Lock()


def redact(secret: str | None) -> None:
    """Mask ``secret`` wherever it would appear in a log line from now on."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def _masked(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _masked(json.dumps(entry, ensure_ascii=False))


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger's records, uvicorn's included, to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Request logs of the HTTP client would show URLs only; keep them quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
