"""Item bodies as plain text: crmsync writes text bodies and reads HTML ones as text."""

from __future__ import annotations

import html
import re
from typing import Any

from exchangelib import HTMLBody

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/p|/div)\b[^>]*>", re.IGNORECASE)


def body_text(body: Any) -> str:
    """The text of an exchangelib body (``Body`` or ``HTMLBody``); ``""`` when absent."""
    if body is None:
        return ""
    if isinstance(body, HTMLBody):
        text = _BREAK.sub("\n", str(body))
        return html.unescape(_TAG.sub("", text)).strip()
    return str(body).replace("\r\n", "\n")
