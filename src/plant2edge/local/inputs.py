"""Resolve path inputs to local paths, as Azure ML mounts or downloads them.

``azureml:<name>:<version>`` and ``azureml:<name>@latest`` name a data asset in
the local store (``uri_file``, ``uri_folder``) or a model in the MLflow
registry (``mlflow_model``, ``custom_model``). ``http(s)://`` files are
downloaded into the run folder. Other paths are local and relative to the
pipeline YAML, as ``az ml job create`` reads them.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from plant2edge.assets import DataAssetError, LocalDataStore, parse_reference
from plant2edge.local.errors import InputResolutionError
from plant2edge.local.record import redact_url
from plant2edge.local.values import MODEL_TYPES, PathValue

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = (10, 300)  # (connect, read between bytes)
_REMOTE_SCHEMES = ("azureml://", "wasbs://", "wasb://", "abfss://", "abfs://", "adl://")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ResolvedInput:
    path: Path
    # What the value referred to, for run.json: asset, model, url or local.
    source: dict = field(default_factory=dict)


class InputResolver:
    """Resolve PathValues once each; downloads go to ``cache_dir``."""

    def __init__(
        self,
        pipeline_dir: Path,
        cache_dir: Path,
        store: LocalDataStore,
        tracking_factory,
    ):
        self.pipeline_dir = pipeline_dir
        self.cache_dir = cache_dir
        self.store = store
        self._tracking_factory = tracking_factory
        self._resolved: dict[tuple[str, str, str], ResolvedInput] = {}

    def resolve(self, value: PathValue, input_type: str) -> ResolvedInput:
        kind = value.type or input_type
        key = (value.origin, kind, value.path)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(value, kind)
        return self._resolved[key]

    def _resolve(self, value: PathValue, kind: str) -> ResolvedInput:
        text = value.path.strip()
        where = f"Input {value.origin} ({kind}, {redact_url(text)!r})"
        try:
            reference = parse_reference(text)
        except DataAssetError as exc:
            raise InputResolutionError(f"{where}: {exc}") from exc
        if reference is not None:
            if kind in MODEL_TYPES:
                return self._model(where, value.origin, *reference)
            return self._data_asset(where, kind, *reference)
        if text.startswith(_REMOTE_SCHEMES):
            raise InputResolutionError(
                f"{where}: this storage URI is only reachable inside Azure ML. "
                "Locally, use a data asset 'azureml:<name>:<version>', an https URL "
                "or a local path."
            )
        if text.startswith(("http://", "https://")):
            return self._download(where, kind, value.origin, text)
        return self._local(where, kind, text)

    def _data_asset(self, where, kind, name, version) -> ResolvedInput:
        try:
            version, path = self.store.resolve(name, version)
            asset_type = self.store.get(name, version).get("type")
        except DataAssetError as exc:
            raise InputResolutionError(f"{where}: {exc}") from exc
        if kind in ("uri_file", "uri_folder") and asset_type != kind:
            raise InputResolutionError(
                f"{where}: data asset {name}:{version} is a {asset_type}, but the "
                f"input is a {kind}. Use a {kind} asset or change the input type."
            )
        logger.info("%s: data asset %s:%s at %s", where, name, version, path)
        return ResolvedInput(path, {"data_asset": f"{name}:{version}"})

    def _model(self, where, origin, name, version) -> ResolvedInput:
        destination = self.cache_dir / _safe(origin)
        version, path = self._tracking_factory().download_model(
            name, version, destination
        )
        logger.info("%s: model %s:%s downloaded to %s", where, name, version, path)
        return ResolvedInput(path, {"model": f"{name}:{version}"})

    def _download(self, where, kind, origin, url) -> ResolvedInput:
        if kind != "uri_file":
            raise InputResolutionError(
                f"{where}: only uri_file inputs can be downloaded from a URL. Use "
                "type uri_file, or download the folder and give its local path."
            )
        target = self.cache_dir / _safe(origin) / _file_name(url)
        download(url, target)
        return ResolvedInput(target, {"url": redact_url(url)})

    def _local(self, where, kind, text) -> ResolvedInput:
        if not text:
            raise InputResolutionError(
                f"{where}: the path is empty. Give a local path, an https URL or a "
                "data asset 'azureml:<name>:<version>'."
            )
        path = Path(unquote(text.removeprefix("file://"))).expanduser()
        if not path.is_absolute():
            path = self.pipeline_dir / path
        path = path.resolve()
        if not path.exists():
            raise InputResolutionError(
                f"{where}: {path} not found. Local paths are relative to the pipeline "
                f"file's folder {self.pipeline_dir}."
            )
        if kind == "uri_file" and path.is_dir():
            raise InputResolutionError(
                f"{where}: {path} is a folder, but a uri_file input needs a file. "
                "Give the path of a file in it, or pass the folder to an input of "
                "type uri_folder."
            )
        if kind == "uri_file" and not path.is_file():
            raise InputResolutionError(
                f"{where}: {path} is not a regular file. Give the path of a file."
            )
        if kind != "uri_file" and not path.is_dir():
            raise InputResolutionError(
                f"{where}: {path} is a file, but a {kind} input needs a folder."
            )
        return ResolvedInput(path, {"local": str(path)})


def download(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` through a temporary file."""
    display_url = redact_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    started = time.monotonic()
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
            if response.status_code != 200:
                raise InputResolutionError(
                    f"Download of {display_url} failed: HTTP {response.status_code} "
                    f"{response.reason}. Check the URL, or download the file and "
                    "give its local path."
                )
            with open(partial, "wb") as handle:
                handle.writelines(response.iter_content(chunk_size=1 << 20))
    except requests.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise InputResolutionError(
            f"Download of {display_url} failed: {_download_failure(exc)}. Check the "
            "URL and the network, or download the file and give its local path."
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    size_mb = target.stat().st_size / 1e6
    logger.info(
        "Downloaded %s (%.1f MB) to %s in %.1f s",
        display_url,
        size_mb,
        target,
        time.monotonic() - started,
    )


def _download_failure(exc: requests.RequestException) -> str:
    # The exception's own text repeats the URL, query string included.
    connect, read = DOWNLOAD_TIMEOUT_S
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out after {connect} s while connecting"
    if isinstance(exc, requests.Timeout):
        return f"timed out: the server sent nothing for {read} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection closed before the whole file arrived"
    if isinstance(exc, requests.ConnectionError):
        return "the server could not be reached"
    return type(exc).__name__


def _file_name(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return _safe(name) or "download"


def _safe(text: str) -> str:
    return _SAFE_NAME.sub("-", text).strip("-")
