"""Local stand-ins for the cloud services of the delivery pipeline.

``start_stack()`` starts Mosquitto (speaking IoT Hub's device topics over TLS)
and Azurite (blob storage) on loopback; ``Stack.start_device()`` starts a
simulated AI Model Manager. ``plant2edge stack start|stop|status`` does the same
from the command line.
"""

from plant2edge.localstack.paths import default_state_dir
from plant2edge.localstack.processes import StackError
from plant2edge.localstack.stack import (
    BlobEndpoint,
    DeviceProcess,
    MqttEndpoint,
    Stack,
    attach_stack,
    start_stack,
    stop_stack,
)

__all__ = [
    "BlobEndpoint",
    "DeviceProcess",
    "MqttEndpoint",
    "Stack",
    "StackError",
    "attach_stack",
    "default_state_dir",
    "start_stack",
    "stop_stack",
]
