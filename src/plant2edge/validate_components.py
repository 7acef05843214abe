"""Checks of one command component spec that azure-ai-ml 1.35 does not make."""

from __future__ import annotations

import functools

import yaml

from plant2edge.validate_common import (
    COMMAND_REF,
    OPTIONAL_SEGMENT,
    Finding,
    did_you_mean,
    names,
)
from plant2edge.validate_sdk import quiet_sdk
from plant2edge.validate_yaml import YamlDoc, is_plain_string
from plant2edge.workspace_environments import BASE_IMAGE

# Convention of this project: each component declares in its tags what it does
# besides turning inputs into outputs, so that reuse of old outputs
# (is_deterministic) can be checked. Several values are joined with commas.
SIDE_EFFECT_TAG = "side_effect"
SIDE_EFFECTS = {
    "none": "only turns its inputs into its outputs",
    "external_data": "reads data from outside its inputs (a URL, a database)",
    "register": "registers a data asset, model or package",
    "deliver": "sends something to a device or another system",
}
# Words in a component name or input name that suggest a side effect; used only to
# propose a value when the tag is missing.
SIDE_EFFECT_HINTS = {
    "register": "register",
    "deliver": "deliver",
    "ingest": "external_data",
    "download": "external_data",
    "url": "external_data",
}


@functools.cache
def command_component_keys() -> frozenset[str]:
    """Return the top-level keys that azure-ai-ml's commandComponent schema loads."""
    with quiet_sdk():
        from azure.ai.ml._schema.component.command_component import (
            CommandComponentSchema,
        )
        from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY

        schema = CommandComponentSchema(context={BASE_PATH_CONTEXT_KEY: "."})
    return frozenset(
        field.data_key or name
        for name, field in schema.fields.items()
        if not field.dump_only
    )


def check_component(doc: YamlDoc) -> list[Finding]:
    """Run every spec check on the component in ``doc`` (not the snapshot)."""
    spec = doc.data
    if not isinstance(spec, dict):
        return [
            Finding(
                doc.path,
                1,
                "component spec is not a mapping",
                "write the component as YAML keys: $schema, name, version, ...",
            )
        ]
    findings = []
    if spec.get("type", "command") == "command":
        findings += check_unknown_keys(doc)
    findings += check_version(doc, "component")
    findings += check_display_name(doc)
    findings += check_descriptions(doc)
    findings += check_command(doc)
    findings += check_side_effects(doc)
    findings += check_image_pinned(doc, ("environment", "image"))
    return findings


def check_unknown_keys(doc: YamlDoc) -> list[Finding]:
    allowed = command_component_keys()
    findings = []
    for key in doc.data:
        if key in allowed:
            continue
        findings.append(
            Finding(
                doc.path,
                doc.line_of(key),
                f"unknown key {key!r} in a command component; azure-ai-ml sends it "
                "to the service as it is." + did_you_mean(key, allowed),
                f"remove it or use one of: {names(sorted(allowed))}",
                field=str(key),
            )
        )
    return findings


def check_version(doc: YamlDoc, kind: str) -> list[Finding]:
    """Check that ``version`` exists and is a quoted string."""
    node = doc.node("version")
    if node is None:
        return [
            Finding(
                doc.path,
                doc.line_of("name"),
                f"{kind} has no version",
                'add version: "1" (quoted) after name',
                field="version",
            )
        ]
    if is_plain_string(node) or not isinstance(node, yaml.ScalarNode):
        return []
    loaded = str(doc.data["version"])
    kind_name = "number" if node.tag.endswith(("int", "float")) else node.tag
    return [
        Finding(
            doc.path,
            node.start_mark.line + 1,
            f"version {node.value} is unquoted, so YAML reads it as a {kind_name} "
            f"and azure-ai-ml registers version {loaded!r}",
            f'quote it: version: "{node.value}"',
            field="version",
        )
    ]


def check_display_name(doc: YamlDoc) -> list[Finding]:
    if str(doc.data.get("display_name") or "").strip():
        return []
    return [
        Finding(
            doc.path,
            doc.line_of("name"),
            "component has no display_name, so the designer shows its bare name",
            "add display_name: a short title for the designer's component list",
            field="display_name",
        )
    ]


def check_descriptions(doc: YamlDoc) -> list[Finding]:
    findings = []
    for section in ("inputs", "outputs"):
        ports = doc.data.get(section) or {}
        if not isinstance(ports, dict):
            continue
        for name, port in ports.items():
            if isinstance(port, dict) and str(port.get("description") or "").strip():
                continue
            kind = section[:-1]
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of(section, name),
                    f"{kind} {name!r} has no description, so the designer shows "
                    "nothing for it",
                    f"add description: what the {kind} contains, for the person wiring "
                    "the component in the designer",
                    field=f"{section}.{name}",
                )
            )
    return findings


def check_command(doc: YamlDoc) -> list[Finding]:
    """Check ``${{inputs.x}}`` and ``${{outputs.y}}`` against the declared ports."""
    command = doc.data.get("command")
    if not isinstance(command, str):
        return []
    declared = {
        section: doc.data.get(section) or {} for section in ("inputs", "outputs")
    }
    findings = []
    used = {"inputs": set(), "outputs": set()}
    for match in COMMAND_REF.finditer(command):
        section, name = match.groups()
        used[section].add(name)
        if name in declared[section]:
            continue
        findings.append(
            Finding(
                doc.path,
                doc.find_in_value(match.group(0), "command"),
                f"command uses {match.group(0)}, but {section} declares no "
                f"{name!r}." + did_you_mean(name, declared[section]),
                f"declare it under {section}: or use one of: "
                f"{names(declared[section])}",
                field="command",
            )
        )
    for section, ports in declared.items():
        if not isinstance(ports, dict):
            continue
        for name in ports:
            if name in used[section]:
                continue
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of(section, name),
                    f"{section[:-1]} {name!r} is declared but the command never "
                    "uses it",
                    f"pass it in command as ${{{{{section}.{name}}}}} or remove it",
                    field=f"{section}.{name}",
                )
            )
    findings += _check_optional_inputs(doc, command, declared["inputs"])
    return findings


def _check_optional_inputs(doc: YamlDoc, command: str, inputs) -> list[Finding]:
    if not isinstance(inputs, dict):
        return []
    outside = OPTIONAL_SEGMENT.sub(" ", command)
    findings = []
    for match in COMMAND_REF.finditer(outside):
        section, name = match.groups()
        port = inputs.get(name)
        if section != "inputs" or not isinstance(port, dict):
            continue
        if port.get("optional") is not True:
            continue
        findings.append(
            Finding(
                doc.path,
                doc.find_in_value(match.group(0), "command"),
                f"optional input {name!r} is used in command outside $[[...]], so "
                "the step fails when it is not set",
                f"wrap the flag and the value: $[[--{name.replace('_', '-')} "
                f"{match.group(0)}]]",
                field="command",
            )
        )
    return findings


def check_side_effects(doc: YamlDoc) -> list[Finding]:
    """Check the side_effect tag and that steps with side effects are not reused."""
    tags = doc.data.get("tags") or {}
    value = tags.get(SIDE_EFFECT_TAG) if isinstance(tags, dict) else None
    if value is None:
        guess = guess_side_effect(doc.data)
        return [
            Finding(
                doc.path,
                doc.line_of("tags") if "tags" in doc.data else doc.line_of("name"),
                f"component has no tags.{SIDE_EFFECT_TAG}, so nobody can tell "
                "whether Azure ML may reuse its old outputs",
                f"add tags: {{{SIDE_EFFECT_TAG}: {guess}}} (one or more of "
                f"{names(SIDE_EFFECTS)}, joined with commas)",
                field=f"tags.{SIDE_EFFECT_TAG}",
            )
        ]
    effects = [part.strip() for part in str(value).split(",") if part.strip()]
    unknown = [effect for effect in effects if effect not in SIDE_EFFECTS]
    if unknown or not effects or ("none" in effects and len(effects) > 1):
        return [
            Finding(
                doc.path,
                doc.line_of("tags", SIDE_EFFECT_TAG),
                f"tags.{SIDE_EFFECT_TAG} is {value!r}; accepted: "
                f"{names(SIDE_EFFECTS)}, several joined with commas, or none alone",
                f"set tags.{SIDE_EFFECT_TAG} to e.g. {guess_side_effect(doc.data)}",
                field=f"tags.{SIDE_EFFECT_TAG}",
            )
        ]
    if effects == ["none"] or doc.data.get("is_deterministic") is False:
        return []
    where = (
        doc.line_of("is_deterministic")
        if "is_deterministic" in doc.data
        else doc.line_of("tags", SIDE_EFFECT_TAG)
    )
    state = "true" if "is_deterministic" in doc.data else "absent (true)"
    return [
        Finding(
            doc.path,
            where,
            f"is_deterministic is {state} although tags.{SIDE_EFFECT_TAG} is "
            f"{value!r}; Azure ML would reuse an old run instead of running the step",
            "set is_deterministic: false (after type: command)",
            field="is_deterministic",
        )
    ]


def guess_side_effect(spec: dict) -> str:
    """Propose a side_effect value from the component and input names."""
    words = [str(spec.get("name", ""))]
    inputs = spec.get("inputs") or {}
    if isinstance(inputs, dict):
        words += [str(name) for name in inputs]
    found = []
    for hint, effect in SIDE_EFFECT_HINTS.items():
        if any(hint in word for word in words) and effect not in found:
            found.append(effect)
    return ",".join(found) or "none"


def check_image_pinned(doc: YamlDoc, keys: tuple[str, ...]) -> list[Finding]:
    """Check that the image at ``keys`` has a tag other than ``latest``."""
    node = doc.node(*keys)
    if not isinstance(node, yaml.ScalarNode):
        return []
    image = str(node.value)
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" in image or (":" in last and not last.endswith(":latest")):
        return []
    return [
        Finding(
            doc.path,
            node.start_mark.line + 1,
            f"image {image} is not pinned, so a rebuild can pick up a different "
            "base image",
            f"use a dated tag, e.g. {BASE_IMAGE}",
            field=".".join(keys),
        )
    ]
