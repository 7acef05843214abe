"""Import azure-ai-ml once with its marshmallow 4 deprecation warnings silenced."""

from plant2edge.validate_sdk import quiet_sdk

with quiet_sdk():
    import azure.ai.ml  # noqa: F401
