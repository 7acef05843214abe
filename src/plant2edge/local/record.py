"""Write ``run.json``, and redact secrets before anything is written or logged."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

# Input names whose values are treated as secrets in run.json and logs.
SECRET_NAME = re.compile(
    r"key|secret|password|passwd|token|sas|connection_?string|credential", re.IGNORECASE
)
_URL = re.compile(
    r"\b([a-z][a-z0-9+.-]*://)([^/\s?#@]*@)?([^\s?#]*)(\?[^\s#]*)?", re.IGNORECASE
)
REDACTED = "<redacted>"


def redact_url(text: str) -> str:
    """Return ``text`` with user info and query strings (SAS tokens) of URLs removed."""

    def strip(match: re.Match) -> str:
        scheme, userinfo, rest, query = match.groups()
        return (
            scheme
            + ("<redacted>@" if userinfo else "")
            + rest
            + (f"?{REDACTED}" if query else "")
        )

    return _URL.sub(strip, text)


def redact_value(name: str, value: Any) -> Any:
    """Return ``value`` safe to store: hidden for secret-like names, URLs stripped."""
    if value is None:
        return None
    if SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return redact_url(value)
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)
