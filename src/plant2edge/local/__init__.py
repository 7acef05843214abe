"""The local pipeline runner by concept; ``plant2edge.runner`` is the entry point."""

import os

# MLflow 3 sends usage telemetry unless this is set; the local runner works
# offline. The artifact progress bars would clutter the step logs.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
