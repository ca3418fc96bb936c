"""Client-chosen event ids: the id a create will use is known before it is sent.

Calendar v3 takes an ``id`` on insert made of base32hex characters (``a-v``, ``0-9``), 5 to
1024 long, unique per calendar (https://developers.google.com/workspace/calendar/api/v3/reference/events#id).
The id is a hash of the marker (the CRM id) and the deployment's salt, so a create
repeated after a crash answers 409 instead of making a second event. A deleted event keeps
its id for ever (a new insert with it answers 409 too), so a re-create after the rep
deleted the event moves to the next *generation* of ids when the old one cannot be
restored.
"""

from __future__ import annotations

import base64
import hashlib

GENERATIONS = 4  # ids tried per marker before a create is refused


def event_id(marker: str, salt: str = "", generation: int = 0) -> str:
    """The id of ``marker``'s event, 32 base32hex characters."""
    seed = f"crmsync:{salt}:{marker}" + (f":{generation}" if generation else "")
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return base64.b32hexencode(digest).decode("ascii").lower().rstrip("=")[:32]


def is_valid_id(value: str) -> bool:
    return 5 <= len(value) <= 1024 and all(c in "0123456789abcdefghijklmnopqrstuv" for c in value)
