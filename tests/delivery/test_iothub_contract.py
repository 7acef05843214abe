"""Contract tests of the IoT Hub transport at the Azure SDK boundary.

IoT Hub's service side and Event Hubs have no local emulator, so these tests
replace only ``IoTHubRegistryManager`` (or its AMQP sender) and
``EventHubConsumerClient`` and pin the exact message shapes on both sides.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from unittest import mock

import azure.eventhub
import azure.iot.hub
import pytest
from azure.eventhub import EventData
from delivery_protocol import (
    DeliverySession,
    RetryPolicy,
    TransientSendError,
)
from delivery_transports import IoTHubTransport, event_to_message

SERVICE_CS = (
    "HostName=contoso-hub.azure-devices.net;SharedAccessKeyName=service;"
    "SharedAccessKey=c2VydmljZS1rZXktZm9yLXRlc3RzLW9ubHk="
)
EVENTS_CS = (
    "Endpoint=sb://ihsuprodamres001dednamespace.servicebus.windows.net/;"
    "SharedAccessKeyName=service;SharedAccessKey=ZXZlbnRzLWtleS1mb3ItdGVzdHM=;"
    "EntityPath=contoso-hub"
)
DEVICE = "amm-line-7"
DELIVERY = "0f6a1c1e-4a51-4d55-9a57-1f2b7e3c9d10"
SAS_URL = "https://contoso.blob.core.windows.net/edge-packages/p.zip?sv=x&sig=abc"
NOW = dt.datetime(2026, 5, 4, 12, 0, 0, tzinfo=dt.UTC)


def device_event(
    device_id: str, delivery_id: str, body: dict, **properties
) -> EventData:
    """Build an EventData as IoT Hub's built-in endpoint delivers a device message."""
    event = EventData(json.dumps(body))
    event.properties = {
        b"deliveryId": delivery_id.encode(),
        **{k.encode(): v.encode() for k, v in properties.items()},
    }
    event.raw_amqp_message.annotations = {
        b"iothub-connection-device-id": device_id.encode(),
    }
    return event


class FakeConsumer:
    """Stands in for EventHubConsumerClient: hands pushed events to on_event.

    ``receive`` blocks until ``close``, as the real client does.
    """

    def __init__(self):
        self.on_event = None
        self.receive_kwargs = None
        self.receiving = threading.Event()
        self.closed = threading.Event()

    def receive(self, **kwargs):
        self.receive_kwargs = kwargs
        self.on_event = kwargs["on_event"]
        self.receiving.set()
        self.closed.wait(10)

    def push(self, event: EventData) -> None:
        assert self.receiving.wait(5), "receive() was never called"
        self.on_event(mock.sentinel.partition_context, event)

    def close(self):
        self.closed.set()


@pytest.fixture
def sdk(monkeypatch):
    """Replace the two SDK clients; return (registry manager mock, consumer, factories)."""
    registry = mock.MagicMock(name="IoTHubRegistryManager()")
    registry_class = mock.MagicMock(name="IoTHubRegistryManager")
    registry_class.from_connection_string.return_value = registry
    consumer = FakeConsumer()
    consumer_class = mock.MagicMock(name="EventHubConsumerClient")
    consumer_class.from_connection_string.return_value = consumer
    monkeypatch.setattr(azure.iot.hub, "IoTHubRegistryManager", registry_class)
    monkeypatch.setattr(azure.eventhub, "EventHubConsumerClient", consumer_class)
    return registry, consumer, registry_class, consumer_class


def answer_like_a_device(registry, consumer, states=("Downloading", "Success")):
    """Make each C2D send produce the D2C messages that AI Model Manager would send."""

    def send(device_id, message, properties):
        delivery_id = properties["deliveryId"]
        if properties["kind"] == "newDelivery":
            consumer.push(
                device_event("other-device", "x", {"state": "Success"}, type="state")
            )
            consumer.push(
                device_event(
                    device_id,
                    delivery_id,
                    {"timestamp": "t"},
                    type="event",
                    kind="presignedUrlRequest",
                )
            )
        else:
            for state in states:
                consumer.push(
                    device_event(device_id, delivery_id, {"state": state}, type="state")
                )

    registry.send_c2d_message.side_effect = send


def run_session(transport, **kwargs):
    session = DeliverySession(
        transport,
        device_id=DEVICE,
        project_id="line-7",
        presigned_url=lambda: SAS_URL,
        delivery_id=DELIVERY,
        retry=RetryPolicy(attempts=3, initial_delay=0.01),
        **kwargs,
    )
    return session.run("pkg-id", "3", timeout_seconds=5)


def test_iothub_transport_sends_exact_c2d_messages(sdk):
    registry, consumer, registry_class, consumer_class = sdk
    answer_like_a_device(registry, consumer)
    transport = IoTHubTransport(
        SERVICE_CS, EVENTS_CS, consumer_group="delivery", now=lambda: NOW
    )

    with transport:
        outcome = run_session(transport)

    assert outcome.final_state == "Success"
    registry_class.from_connection_string.assert_called_once_with(SERVICE_CS)
    consumer_class.from_connection_string.assert_called_once_with(
        EVENTS_CS, consumer_group="delivery"
    )
    assert registry.send_c2d_message.call_count == 2
    new_call, url_call = registry.send_c2d_message.call_args_list
    device, body = new_call.args
    assert device == DEVICE
    assert new_call.kwargs["properties"] == {
        "type": "event",
        "kind": "newDelivery",
        "deliveryId": DELIVERY,
        "projectId": "line-7",
        "contentType": "application/json",
    }
    new_body = json.loads(body)
    assert set(new_body) == {"packageId", "packageVersion", "eventId", "timestamp"}
    assert new_body["packageId"] == "pkg-id"
    assert new_body["packageVersion"] == "3"
    assert url_call.args[0] == DEVICE
    assert url_call.kwargs["properties"] == {
        "type": "data",
        "kind": "presignedUrlResponse",
        "deliveryId": DELIVERY,
        "projectId": "line-7",
        "contentType": "application/json",
    }
    url_body = json.loads(url_call.args[1])
    assert set(url_body) == {"timestamp", "attributes"}
    assert url_body["attributes"] == {"presignedUrl": SAS_URL}
    assert consumer.closed.is_set()


def test_iothub_transport_reads_from_lookback_position(sdk):
    registry, consumer, _, _ = sdk
    answer_like_a_device(registry, consumer)
    transport = IoTHubTransport(SERVICE_CS, EVENTS_CS, now=lambda: NOW)

    with transport:
        run_session(transport)

    assert consumer.receive_kwargs["starting_position"] == NOW - dt.timedelta(
        seconds=60
    )
    assert callable(consumer.receive_kwargs["on_event"])


def test_iothub_transport_ignores_other_devices(sdk):
    registry, consumer, _, _ = sdk
    answer_like_a_device(registry, consumer)
    transport = IoTHubTransport(SERVICE_CS, EVENTS_CS, now=lambda: NOW)

    with transport:
        outcome = run_session(transport)

    # The message of "other-device" never reaches the session.
    assert outcome.ignored_messages == 0
    assert [s.state for s in outcome.states] == ["Downloading", "Success"]


def test_iothub_transport_reports_device_error(sdk):
    registry, consumer, _, _ = sdk
    answer_like_a_device(registry, consumer, states=("Downloading", "Error"))
    transport = IoTHubTransport(SERVICE_CS, EVENTS_CS, now=lambda: NOW)

    with transport:
        outcome = run_session(transport)

    assert outcome.final_state == "Error"
    assert not outcome.succeeded


def test_iothub_transport_retries_failed_send(sdk, caplog):
    registry, consumer, _, _ = sdk
    answer_like_a_device(registry, consumer)
    answer = registry.send_c2d_message.side_effect
    failures = [Exception("C2D message send failure")]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop()
        return answer(*args, **kwargs)

    registry.send_c2d_message.side_effect = flaky
    transport = IoTHubTransport(SERVICE_CS, EVENTS_CS, now=lambda: NOW)
    caplog.set_level(logging.WARNING)

    with transport:
        outcome = run_session(transport)

    assert outcome.final_state == "Success"
    assert registry.send_c2d_message.call_count == 3
    assert "failed (attempt 1 of 3): Exception: C2D message send failure" in caplog.text


def test_iothub_transport_gives_up_after_bounded_retries(sdk):
    registry, _, _, _ = sdk
    registry.send_c2d_message.side_effect = Exception("C2D message send failure")
    transport = IoTHubTransport(SERVICE_CS, EVENTS_CS, now=lambda: NOW)

    with transport, pytest.raises(TransientSendError, match="failed 3 times"):
        run_session(transport)

    assert registry.send_c2d_message.call_count == 3


def test_event_to_message_decodes_bytes_properties():
    event = device_event(
        DEVICE, DELIVERY, {"state": "Verifying"}, type="state", projectId="line-7"
    )

    message = event_to_message(event)

    assert message.device_id == DEVICE
    assert message.properties == {
        "deliveryId": DELIVERY,
        "type": "state",
        "projectId": "line-7",
    }
    assert json.loads(message.body) == {"state": "Verifying"}


class CapturingSender:
    """Stands in for uamqp's SendClient inside the real IoTHubRegistryManager."""

    def __init__(self):
        self.messages = []

    def queue_message(self, message):
        self.messages.append(message)

    def send_all_messages(self, close_on_done=False):
        return []

    def close(self):
        pass


def test_registry_manager_sends_content_type_as_system_property():
    from azure.iot.hub import IoTHubRegistryManager
    from delivery_protocol import new_delivery_message

    manager = IoTHubRegistryManager.from_connection_string(SERVICE_CS)
    sender = CapturingSender()
    manager.amqp_svc_client.amqp_client = sender
    message = new_delivery_message(DELIVERY, "line-7", "pkg-id", "3")

    manager.send_c2d_message(
        DEVICE, message.body.decode(), properties=dict(message.properties)
    )

    (sent,) = sender.messages
    assert sent.properties.content_type == b"application/json"
    assert sent.properties.to == f"/devices/{DEVICE}/messages/devicebound".encode()
    assert sent.application_properties == {
        "type": "event",
        "kind": "newDelivery",
        "deliveryId": DELIVERY,
        "projectId": "line-7",
    }
    assert b"".join(sent.get_data()) == message.body
