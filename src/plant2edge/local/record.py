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
MIN_SECRET_LENGTH = 4


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


class Redactor:
    """Hide secret values before they are written to run.json, command.sh or logs.

    A value is secret when its input or override name looks like one (key,
    token, password, SAS, connection string ...). Once seen, the same text is
    hidden wherever it appears, also under other input names.
    """

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def remember(self, name: str, value: Any) -> None:
        # Shorter values would hide unrelated text such as step numbers.
        if not isinstance(value, str | int | float) or not SECRET_NAME.search(name):
            return
        if len(str(value)) >= MIN_SECRET_LENGTH:
            self.secrets.add(str(value))

    def __call__(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if SECRET_NAME.search(name):
            return REDACTED
        if isinstance(value, str):
            value = redact_url(value)
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
        return value


def write_json_atomic(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)
