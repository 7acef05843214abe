"""Exceptions of the local pipeline runner."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of the errors the local runner raises."""


class PipelineSpecError(PipelineError, ValueError):
    """The pipeline YAML, a component or an override is invalid; nothing ran."""


class InputResolutionError(PipelineError):
    """An input (data asset, model, URL or local path) could not be resolved."""


class StepFailedError(PipelineError):
    """A step failed; raised by ``PipelineRunResult.raise_for_status``."""
