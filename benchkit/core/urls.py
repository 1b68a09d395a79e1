"""URLs as benchkit records and prints them: without the credentials they may carry.

A suite may give a server as `http://user:password@host:8080/v1` (basic authentication
through a proxy). The requests need the credentials; nothing benchkit writes does: not
the result file (engine settings, facts, errors), not a progress line, not an error
line. Every URL and every text that may quote one passes through here before it is kept.
"""

from __future__ import annotations

import re
from typing import Any

# scheme://userinfo@ : the userinfo is everything up to the last @ before the host's end
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@]*@")


def without_credentials(text: str) -> str:
    """`text` with the `user:password@` of every URL in it removed."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


def scrub_credentials(value: Any) -> Any:
    """A copy of a JSON value (dicts, lists, strings) with every string's URL credentials
    removed; the value itself when none carries any."""
    if isinstance(value, str):
        return without_credentials(value)
    if isinstance(value, dict):
        return {without_credentials(k) if isinstance(k, str) else k: scrub_credentials(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_credentials(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_credentials(v) for v in value)
    return value
