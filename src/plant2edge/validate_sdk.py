"""azure-ai-ml's own offline load and validation, turned into findings with lines."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings

from plant2edge.validate_common import Finding
from plant2edge.validate_yaml import YamlDoc

logger = logging.getLogger(__name__)

KINDS = ("component", "pipeline", "schedule", "environment")
MAX_MESSAGE = 400


@contextlib.contextmanager
def quiet_sdk():
    """Silence azure-ai-ml's notes on experimental classes and marshmallow 4 warnings.

    azure-ai-ml 1.35 logs a note for each experimental schema class on first use,
    and each load triggers thousands of marshmallow deprecation warnings. Neither
    concerns the YAML being checked.
    """
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    from marshmallow.warnings import Marshmallow4Warning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Marshmallow4Warning)
        yield


def load_entity(kind: str, path, params_override=None):
    """Load ``path`` with the azure-ai-ml loader for ``kind``."""
    with quiet_sdk():
        from azure.ai.ml import load_component, load_environment, load_job
        from azure.ai.ml.entities._load_functions import load_schedule

        loaders = {
            "component": load_component,
            "pipeline": load_job,
            "schedule": load_schedule,
            "environment": load_environment,
        }
        return loaders[kind](source=path, params_override=params_override or [])


def check_with_sdk(doc: YamlDoc, kind: str) -> list[Finding]:
    """Load ``doc`` with azure-ai-ml and run its ``_validate()`` where it has one."""
    try:
        entity = load_entity(kind, doc.path)
    except Exception as exc:  # noqa: BLE001 - every loader error is a finding here.
        return _findings_from_exception(doc, exc)
    validate = getattr(entity, "_validate", None)
    if validate is None:
        return []
    with quiet_sdk():
        result = validate()
    if result.passed:
        return []
    return [
        _sdk_finding(doc, path, message)
        for path, message in result.error_messages.items()
    ]


def _findings_from_exception(doc: YamlDoc, exc: Exception) -> list[Finding]:
    text = str(exc)
    errors = _structured_errors(text)
    if not errors:
        return [_sdk_finding(doc, "", _first_lines(text) or type(exc).__name__)]
    findings = []
    for error in errors:
        path, message = str(error.get("path", "")), str(error.get("message", ""))
        nested = _nested_errors(message) if path in ("", "*") else {}
        if not nested:
            findings.append(_sdk_finding(doc, path, _first_lines(message)))
        for key, messages in nested.items():
            findings.append(_sdk_finding(doc, key, _first_lines(str(messages))))
    return findings


def _structured_errors(text: str) -> list[dict]:
    # azure-ai-ml raises ValidationError("Validation for XSchema failed:\n\n {json}").
    start = text.find('{\n  "result"')
    if start < 0:
        return []
    try:
        payload, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    return [error for error in errors or [] if isinstance(error, dict)]


def _nested_errors(message: str) -> dict:
    # A whole-file error of a schedule or job wraps a {"field": [messages]} dict.
    start = message.find("{", message.find("failed:"))
    if "failed:" not in message or start < 0:
        return {}
    try:
        payload, _ = json.JSONDecoder().raw_decode(message, start)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _first_lines(text: str) -> str:
    # Drop the advertisement for the VS Code extension that ends many messages.
    for marker in ("Visit this link", "The easiest way to author"):
        text = text.split(marker, 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " ".join(lines)
    return joined[:MAX_MESSAGE] + ("..." if len(joined) > MAX_MESSAGE else "")


def _sdk_finding(doc: YamlDoc, path: str, message: str) -> Finding:
    keys = [int(part) if part.isdigit() else part for part in path.split(".") if part]
    line = doc.line_of(*keys) if keys else 1
    where = f"{path}: " if path else ""
    schema = (doc.data or {}).get("$schema") if isinstance(doc.data, dict) else None
    fix = "correct the YAML as the message says"
    if schema:
        fix += f"; the accepted keys are in {schema}"
    message = re.sub(r"\s+", " ", message).strip()
    return Finding(
        doc.path,
        line,
        f"azure-ai-ml rejects it: {where}{message}",
        fix,
        field=path or None,
        source="azure-ai-ml",
    )
