"""Find a registered state identifier model and read what the edge package needs.

The model contract: an MLflow model with the sklearn flavor whose object is a
scikit-learn Pipeline, a signature (inputs = signals, one output = the state),
MLmodel metadata ``window_size``, ``step``, ``feature_columns``, ``n_states``,
``data_asset_name`` and ``data_asset_version``, and a first pipeline stage with
a ``window_features(window)`` method.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

# MLflow signature type -> AI Inference Server variable type.
SIGNATURE_TYPES = {
    "double": "Double",
    "float": "Double",
    "integer": "Integer",
    "long": "Integer",
    "string": "String",
    "boolean": "Boolean",
}
REQUIRED_METADATA = ("window_size", "step")
VERSION_PATTERN = re.compile(r"^[0-9]+$")


@dataclass
class Variable:
    name: str
    type: str


@dataclass
class ModelSource:
    """A registered model version downloaded to ``path``, with its contract checked."""

    name: str
    version: str
    path: Path
    inputs: list[Variable]
    output: Variable
    metadata: dict
    serialization_format: str
    pickled_model: str
    code_dir: str | None
    data_asset: str = ""

    @property
    def window_size(self) -> int:
        return int(self.metadata["window_size"])

    @property
    def step(self) -> int:
        return int(self.metadata["step"])

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def code_modules(self) -> list[Path]:
        if self.code_dir is None:
            return []
        return sorted((self.path / self.code_dir).rglob("*.py"))


def check_version_text(model_version: str) -> str:
    """Return 'latest' or the version number without leading zeros ("01" -> "1").

    Raise ValueError for anything else. The number becomes the edge package
    version, so "01" and "1" must give the same package.
    """
    text = str(model_version).strip()
    if text == "latest":
        return text
    if VERSION_PATTERN.match(text):
        return str(int(text))
    raise ValueError(
        f"Invalid model_version {model_version!r}: use a registered version number "
        "such as 3, or 'latest'. The edge package version equals the model version, "
        "and AI Inference Server accepts package versions made of digits only."
    )


def resolve_version(client: MlflowClient, name: str, model_version: str) -> str:
    """Return the registered version number for ``model_version`` (digits or 'latest')."""
    text = check_version_text(model_version)
    versions = registered_versions(client, name)
    if not versions:
        raise LookupError(
            f"Registered model {name!r} has no versions in the registry at "
            f"{mlflow.get_registry_uri()}. Train and register the model first "
            "(pipelines/training.yaml)."
        )
    if text == "latest":
        return str(max(versions))
    if int(text) not in versions:
        raise LookupError(
            f"Registered model {name!r} has no version {text}; registered versions "
            f"are {sorted(versions)}. Pass one of them or 'latest'."
        )
    return text


def registered_versions(client: MlflowClient, name: str) -> list[int]:
    """Return the version numbers of ``name``; raise LookupError if the model is unknown."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        known = sorted(model.name for model in client.search_registered_models())
        raise LookupError(
            f"Registered model {name!r} not found in the registry at "
            f"{mlflow.get_registry_uri()}. Registered models: {known}. Check "
            "model_name, or train and register the model first."
        ) from exc
    found = client.search_model_versions(f"name = '{_quote(name)}'")
    return sorted(int(version.version) for version in found)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def download(name: str, model_version: str, dest: Path) -> ModelSource:
    """Download a registered model version into ``dest`` and check its contract."""
    client = MlflowClient()
    version = resolve_version(client, name, model_version)
    uri = f"models:/{name}/{version}"
    logger.info("Downloading %s", uri)
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    )
    return read_model(name, version, local)


def read_model(name: str, version: str, path: Path) -> ModelSource:
    """Read the MLmodel file at ``path`` and check the model contract."""
    mlmodel = Model.load(str(path / "MLmodel"))
    where = f"models:/{name}/{version}"
    if mlmodel.signature is None:
        raise ValueError(
            f"Model {where} has no signature, so the edge package cannot declare its "
            "inputs and outputs. Log the model with a signature (inputs ph1, ph2, "
            "ph3 double; output state long) and register it again."
        )
    flavor = mlmodel.flavors.get("sklearn")
    if flavor is None:
        raise ValueError(
            f"Model {where} has no sklearn flavor (flavors: {sorted(mlmodel.flavors)}). "
            "Log it with mlflow.sklearn.log_model."
        )
    metadata = dict(mlmodel.metadata or {})
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(
            f"Model {where} lacks MLmodel metadata {missing}. Log it with "
            "metadata={'window_size': ..., 'step': ..., 'feature_columns': [...], ...}."
        )
    inputs = [
        _variable(spec, where, "input") for spec in mlmodel.signature.inputs.inputs
    ]
    outputs = mlmodel.signature.outputs
    if outputs is None or len(outputs.inputs) != 1:
        count = 0 if outputs is None else len(outputs.inputs)
        raise ValueError(
            f"Model {where} declares {count} outputs in its signature; the edge "
            "package needs exactly one (the state)."
        )
    data_asset = ""
    if metadata.get("data_asset_name"):
        data_asset = (
            f"{metadata['data_asset_name']}:{metadata.get('data_asset_version', '')}"
        )
    return ModelSource(
        name=name,
        version=str(version),
        path=path,
        inputs=inputs,
        output=_variable(outputs.inputs[0], where, "output"),
        metadata=metadata,
        serialization_format=flavor.get("serialization_format", "cloudpickle"),
        pickled_model=flavor["pickled_model"],
        code_dir=flavor.get("code"),
        data_asset=data_asset,
    )


def _variable(spec, where: str, role: str) -> Variable:
    if spec.name is None:
        raise ValueError(
            f"Model {where} has an unnamed {role} in its signature; every input and "
            "output needs a name to become an AI Inference Server variable."
        )
    mlflow_type = getattr(spec.type, "name", str(spec.type))
    if mlflow_type not in SIGNATURE_TYPES:
        raise ValueError(
            f"Model {where} {role} {spec.name!r} has signature type {mlflow_type!r}; "
            f"the edge package supports {sorted(SIGNATURE_TYPES)}."
        )
    return Variable(spec.name, SIGNATURE_TYPES[mlflow_type])


def load_pipeline(source: ModelSource):
    """Load the scikit-learn Pipeline and check what the edge runtime relies on."""
    pipeline = mlflow.sklearn.load_model(str(source.path))
    steps = getattr(pipeline, "steps", None)
    if not steps:
        raise TypeError(
            f"Model {source.uri} is a {type(pipeline).__name__}, not a scikit-learn "
            "Pipeline whose first stage computes window features."
        )
    stage = steps[0][1]
    if not callable(getattr(stage, "window_features", None)):
        raise TypeError(
            f"The first stage of {source.uri} ({type(stage).__name__}) has no "
            "window_features(window) method; the edge runtime needs it to compute "
            "the same features as training."
        )
    for key in REQUIRED_METADATA:
        stage_value = getattr(stage, key, None)
        if stage_value is not None and int(stage_value) != int(source.metadata[key]):
            raise ValueError(
                f"Model {source.uri}: MLmodel metadata {key}={source.metadata[key]} "
                f"differs from the first stage's {key}={stage_value}. Retrain so "
                "that both agree."
            )
    return pipeline


def signal_columns(source: ModelSource, pipeline) -> list[str]:
    """Return the signal columns in the column order of the window array."""
    stage = pipeline.steps[0][1]
    columns = getattr(stage, "signal_columns", None) or source.metadata.get(
        "feature_columns"
    )
    columns = list(columns or [variable.name for variable in source.inputs])
    names = {variable.name: variable.type for variable in source.inputs}
    unknown = [column for column in columns if column not in names]
    if unknown:
        raise ValueError(
            f"Model {source.uri} computes windows over {unknown}, which are not "
            f"inputs of its signature {sorted(names)}."
        )
    not_numeric = [c for c in columns if names[c] not in ("Double", "Integer")]
    if not_numeric:
        raise ValueError(
            f"Model {source.uri} windows non-numeric inputs {not_numeric}; window "
            "signals must be double or long."
        )
    return columns
