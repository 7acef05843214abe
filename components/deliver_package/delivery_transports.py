"""Transports for the delivery protocol: IoT Hub's service SDKs, or MQTT to a broker.

``IoTHubTransport`` sends C2D messages with azure-iot-hub's
``IoTHubRegistryManager.send_c2d_message`` and reads D2C messages from the
hub's Event Hub-compatible endpoint with azure-eventhub.

``MqttTransport`` speaks IoT Hub's device topic layout to an MQTT broker (the
local Mosquitto) as a cloud-side client allowed to publish to every device's
``devices/<id>/messages/devicebound/<properties>`` topic and to subscribe to
``devices/<id>/messages/events/#``. Message properties travel in the topic as
a percent-encoded ``key=value&...`` bag, system properties (``$.ct`` ...) first.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import ssl
import threading
import urllib.parse
import uuid
from collections.abc import Callable

from delivery_protocol import (
    C2DMessage,
    D2CMessage,
    TransientSendError,
    Transport,
)

logger = logging.getLogger(__name__)

# IoT Hub's names for C2D system properties and their MQTT property-bag keys.
SYSTEM_PROPERTY_KEYS = {
    "messageId": "$.mid",
    "correlationId": "$.cid",
    "contentType": "$.ct",
    "contentEncoding": "$.ce",
    "expiryTimeUtc": "$.exp",
}
MQTT_CONTENT_TYPE_KEY = "$.ct"
DEVICE_ID_PROPERTY = b"iothub-connection-device-id"
CONTENT_TYPE_PROPERTY = b"content-type"


class TransportError(RuntimeError):
    """A transport cannot connect or is configured wrongly."""


# -- MQTT --------------------------------------------------------------------


def encode_property_bag(pairs: list[tuple[str, str]]) -> str:
    return "&".join(
        f"{urllib.parse.quote(key, safe='')}={urllib.parse.quote(value, safe='')}"
        for key, value in pairs
    )


def decode_property_bag(bag: str) -> dict[str, str]:
    properties = {}
    for item in bag.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        properties[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return properties


def c2d_topic(device_id: str, message: C2DMessage) -> str:
    """Build the devicebound topic IoT Hub would use for ``message``."""
    system = [
        ("$.mid", message.properties.get("messageId") or str(uuid.uuid4())),
        ("$.to", f"/devices/{device_id}/messages/devicebound"),
    ]
    custom = []
    for key, value in message.properties.items():
        if key == "messageId":
            continue
        if key in SYSTEM_PROPERTY_KEYS:
            system.append((SYSTEM_PROPERTY_KEYS[key], str(value)))
        else:
            custom.append((key, str(value)))
    bag = encode_property_bag(system + sorted(custom))
    return f"devices/{device_id}/messages/devicebound/{bag}"


def parse_d2c_topic(topic: str, payload: bytes) -> D2CMessage | None:
    """Parse ``devices/<id>/messages/events/<bag>``; None for other topics."""
    parts = topic.split("/", 4)
    if len(parts) < 4 or parts[0] != "devices" or parts[2:4] != ["messages", "events"]:
        return None
    bag = decode_property_bag(parts[4] if len(parts) > 4 else "")
    content_type = bag.get(MQTT_CONTENT_TYPE_KEY)
    properties = {k: v for k, v in bag.items() if not k.startswith("$.")}
    return D2CMessage(parts[1], properties, payload, content_type)


class MqttTransport(Transport):
    """Cloud-side MQTT client with a TLS client certificate (paho-mqtt 1.6)."""

    name = "MQTT broker"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca_cert: str,
        client_cert: str,
        client_key: str,
        connect_timeout: float = 10.0,
        ack_timeout: float = 5.0,
    ):
        import paho.mqtt.client as mqtt

        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self._inbox: queue.Queue[D2CMessage] = queue.Queue()
        self._topics: set[str] = set()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connect_result: int | None = None
        # A persistent session keeps subscriptions and queued QoS 1 messages
        # while the broker or the connection restarts.
        self._client = mqtt.Client(
            client_id=f"plant2edge-cloud-{uuid.uuid4().hex[:12]}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self._client.tls_set(
            ca_certs=ca_cert,
            certfile=client_cert,
            keyfile=client_key,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self._client.reconnect_delay_set(min_delay=0.25, max_delay=4)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._mqtt = mqtt

    def connect(self) -> MqttTransport:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(
                f"Cannot connect to the MQTT broker at {self.host}:{self.port}: "
                f"{exc}. Start the local stack with 'plant2edge stack start'."
            ) from exc
        self._client.loop_start()
        if not self._connected.wait(self.connect_timeout):
            self._client.loop_stop()
            reason = (
                self._mqtt.connack_string(self._connect_result)
                if self._connect_result
                else "no CONNACK"
            )
            raise TransportError(
                f"The MQTT broker at {self.host}:{self.port} did not accept the "
                f"cloud-side client within {self.connect_timeout:g} s ({reason}). "
                "Check the client certificate in the local stack's stack.json."
            )
        return self

    def _on_connect(self, client, userdata, flags, rc) -> None:
        self._connect_result = rc
        if rc != 0:
            logger.warning(
                "MQTT broker rejected the connection: %s", self._mqtt.connack_string(rc)
            )
            return
        logger.debug("Connected to the MQTT broker at %s:%d", self.host, self.port)
        for topic in self._topics:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_disconnect(self, client, userdata, rc) -> None:
        self._connected.clear()
        if rc != 0:
            logger.warning(
                "Lost the connection to the MQTT broker at %s:%d (rc %d); reconnecting",
                self.host,
                self.port,
                rc,
            )

    def _on_subscribe(self, client, userdata, mid, granted_qos) -> None:
        if any(qos == 0x80 for qos in granted_qos):
            logger.error("The MQTT broker rejected the subscription to device events")
            return
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        message = parse_d2c_topic(msg.topic, msg.payload)
        if message is not None:
            self._inbox.put(message)

    def open(self, device_id: str) -> None:
        topic = f"devices/{device_id}/messages/events/#"
        self._topics.add(topic)
        self._subscribed.clear()
        result, _ = self._client.subscribe(topic, qos=1)
        if result != self._mqtt.MQTT_ERR_SUCCESS or not self._subscribed.wait(
            self.connect_timeout
        ):
            raise TransportError(
                f"Subscribing to {topic} on {self.host}:{self.port} failed "
                f"({self._mqtt.error_string(result)}); the delivery cannot read "
                "the device's messages."
            )

    def send_c2d(self, device_id: str, message: C2DMessage) -> None:
        if not self._client.is_connected():
            raise TransientSendError(
                f"not connected to the MQTT broker at {self.host}:{self.port}"
            )
        info = self._client.publish(c2d_topic(device_id, message), message.body, qos=1)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise TransientSendError(
                f"publish failed: {self._mqtt.error_string(info.rc)}"
            )
        try:
            info.wait_for_publish(self.ack_timeout)
        except RuntimeError as exc:
            raise TransientSendError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise TransientSendError(
                f"the broker did not acknowledge the message within {self.ack_timeout:g} s"
            )

    def receive(self, timeout: float) -> D2CMessage | None:
        try:
            return self._inbox.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._client.is_connected():
            for topic in self._topics:
                self._client.unsubscribe(topic)
        self._client.disconnect()
        self._client.loop_stop()


# -- IoT Hub -----------------------------------------------------------------


def decode(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def event_to_message(event) -> D2CMessage:
    """Convert an Event Hubs ``EventData`` from IoT Hub's built-in endpoint.

    Application properties arrive with bytes keys and values; the sending device
    is the system property ``iothub-connection-device-id``.
    """
    system = event.system_properties or {}
    properties = {decode(k): decode(v) for k, v in (event.properties or {}).items()}
    device = system.get(DEVICE_ID_PROPERTY)
    content_type = system.get(CONTENT_TYPE_PROPERTY)
    return D2CMessage(
        decode(device) if device is not None else "",
        properties,
        event.body_as_str(encoding="UTF-8").encode(),
        decode(content_type) if content_type is not None else None,
    )


class IoTHubTransport(Transport):
    """C2D through IoTHubRegistryManager, D2C through EventHubConsumerClient."""

    name = "IoT hub"

    def __init__(
        self,
        service_connection_string: str,
        eventhub_connection_string: str,
        *,
        consumer_group: str = "$Default",
        lookback: dt.timedelta = dt.timedelta(seconds=60),
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self._service_connection_string = service_connection_string
        self._registry = self._new_registry()
        self._eventhub_connection_string = eventhub_connection_string
        self.consumer_group = consumer_group
        self.lookback = lookback
        self.now = now
        self._inbox: queue.Queue[D2CMessage] = queue.Queue()
        self._devices: set[str] = set()
        self._consumer = None
        self._thread: threading.Thread | None = None

    def _new_registry(self):
        from azure.iot.hub import IoTHubRegistryManager

        return IoTHubRegistryManager.from_connection_string(
            self._service_connection_string
        )

    def open(self, device_id: str) -> None:
        self._devices.add(device_id)
        if self._consumer is not None:
            return
        from azure.eventhub import EventHubConsumerClient

        self._consumer = EventHubConsumerClient.from_connection_string(
            self._eventhub_connection_string, consumer_group=self.consumer_group
        )
        # Start a little in the past so that a device message enqueued while
        # the receiver is still attaching to the partitions is not missed.
        start = self.now() - self.lookback
        self._thread = threading.Thread(
            target=self._consumer.receive,
            kwargs={"on_event": self._on_event, "starting_position": start},
            name="iothub-d2c-receiver",
            daemon=True,
        )
        self._thread.start()

    def _on_event(self, partition_context, event) -> None:
        if event is None:
            return
        message = event_to_message(event)
        if message.device_id in self._devices:
            self._inbox.put(message)

    def send_c2d(self, device_id: str, message: C2DMessage) -> None:
        try:
            self._registry.send_c2d_message(
                device_id,
                message.body.decode("utf-8"),
                properties=dict(message.properties),
            )
        except Exception as exc:
            # azure-iot-hub raises a bare Exception ("C2D message send failure")
            # or uamqp errors; all of them are worth a bounded retry. The failed
            # AMQP client cannot connect again (its authentication is used up),
            # so the retry gets a new one.
            self._registry = self._new_registry()
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc

    def receive(self, timeout: float) -> D2CMessage | None:
        try:
            return self._inbox.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
