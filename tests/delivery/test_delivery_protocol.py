"""The protocol engine and the MQTT topic encoding, without a broker."""

from __future__ import annotations

import json
import logging
import queue

import pytest
from delivery_protocol import (
    C2DMessage,
    D2CMessage,
    DeliverySession,
    DeliveryTimeoutError,
    RetryPolicy,
    TransientSendError,
    Transport,
    new_delivery_message,
)
from delivery_transports import (
    c2d_topic,
    decode_property_bag,
    encode_property_bag,
    parse_d2c_topic,
)


class ScriptedTransport(Transport):
    """A transport whose device messages come from a script; records what was sent."""

    name = "scripted"

    def __init__(self, answers=None, failures: int = 0):
        self.answers = answers or (lambda message: [])
        self.failures = failures
        self.sent: list[tuple[str, C2DMessage]] = []
        self.inbox: queue.Queue = queue.Queue()
        self.opened: list[str] = []

    def open(self, device_id):
        self.opened.append(device_id)

    def send_c2d(self, device_id, message):
        if self.failures:
            self.failures -= 1
            raise TransientSendError("connection reset")
        self.sent.append((device_id, message))
        for answer in self.answers(message):
            self.inbox.put(answer)

    def receive(self, timeout):
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        pass


def d2c(device: str, delivery: str, body: dict, **properties) -> D2CMessage:
    return D2CMessage(
        device, {"deliveryId": delivery, **properties}, json.dumps(body).encode()
    )


def session_for(transport, **kwargs) -> DeliverySession:
    return DeliverySession(
        transport,
        device_id="amm-1",
        project_id="p",
        presigned_url=lambda: "http://127.0.0.1/x.zip?sig=s",
        delivery_id="d-1",
        retry=RetryPolicy(attempts=3, initial_delay=0.5),
        sleep=lambda seconds: None,
        **kwargs,
    )


def test_c2d_topic_matches_iot_hub_layout():
    message = C2DMessage(
        {
            "type": "event",
            "kind": "newDelivery",
            "deliveryId": "d 1/2",
            "contentType": "application/json",
            "messageId": "m-1",
        },
        b"{}",
    )

    topic = c2d_topic("amm-1", message)

    assert topic == (
        "devices/amm-1/messages/devicebound/"
        "%24.mid=m-1&%24.to=%2Fdevices%2Famm-1%2Fmessages%2Fdevicebound"
        "&%24.ct=application%2Fjson"
        "&deliveryId=d%201%2F2&kind=newDelivery&type=event"
    )


def test_property_bag_round_trip():
    pairs = [("$.ct", "application/json"), ("deliveryId", "a&b=c"), ("k", "ä")]

    assert decode_property_bag(encode_property_bag(pairs)) == dict(pairs)


def test_parse_d2c_topic_splits_system_properties():
    topic = (
        "devices/amm-1/messages/events/"
        "%24.ct=application%2Fjson&%24.ce=utf-8&deliveryId=d-1&type=state"
    )

    message = parse_d2c_topic(topic, b'{"state": "Success"}')

    assert message.device_id == "amm-1"
    assert message.properties == {"deliveryId": "d-1", "type": "state"}
    assert message.content_type == "application/json"


def test_parse_d2c_topic_ignores_other_topics():
    assert parse_d2c_topic("devices/amm-1/messages/devicebound/x=1", b"") is None


def test_new_delivery_message_shape():
    message = new_delivery_message(
        "d-1", "p", "pkg", "2", event_id="e-1", timestamp="2026-01-01T00:00:00Z"
    )

    assert message.properties == {
        "type": "event",
        "kind": "newDelivery",
        "deliveryId": "d-1",
        "projectId": "p",
        "contentType": "application/json",
    }
    assert json.loads(message.body) == {
        "packageId": "pkg",
        "packageVersion": "2",
        "eventId": "e-1",
        "timestamp": "2026-01-01T00:00:00Z",
    }


def test_retry_policy_delays_double_up_to_max():
    policy = RetryPolicy(attempts=6, initial_delay=0.5, multiplier=2, max_delay=3)

    assert list(policy.delays()) == [0.5, 1.0, 2.0, 3, 3]


def test_session_retries_transient_send_failure(caplog):
    transport = ScriptedTransport(
        answers=lambda m: [d2c("amm-1", "d-1", {"state": "Success"}, type="state")],
        failures=2,
    )
    slept = []
    session = DeliverySession(
        transport,
        device_id="amm-1",
        project_id="p",
        presigned_url=lambda: "u",
        delivery_id="d-1",
        retry=RetryPolicy(attempts=3, initial_delay=0.5),
        sleep=slept.append,
    )
    caplog.set_level(logging.WARNING)

    outcome = session.run("pkg", "1", timeout_seconds=5)

    assert outcome.final_state == "Success"
    assert slept == [0.5, 1.0]
    assert "attempt 1 of 3" in caplog.text
    assert "attempt 2 of 3" in caplog.text
    assert transport.opened == ["amm-1"]


def test_session_send_fails_after_bounded_attempts():
    transport = ScriptedTransport(failures=5)

    with pytest.raises(
        TransientSendError, match="newDelivery to device amm-1 failed 3 times"
    ):
        session_for(transport).run("pkg", "1", timeout_seconds=5)


def test_session_timeout_names_last_state():
    transport = ScriptedTransport(
        answers=lambda m: [d2c("amm-1", "d-1", {"state": "Downloading"}, type="state")]
    )

    with pytest.raises(
        DeliveryTimeoutError,
        match="Delivery d-1 to device amm-1 timed out after 0.3 s; last state seen: "
        "Downloading",
    ) as info:
        session_for(transport).run("pkg", "1", timeout_seconds=0.3)

    assert info.value.outcome.final_state is None


def test_session_answers_every_url_request():
    def answers(message):
        if message.properties["kind"] == "newDelivery":
            request = d2c("amm-1", "d-1", {}, type="event", kind="presignedUrlRequest")
            return [request, request]
        if (
            len([m for m in transport.sent if m[1].properties["kind"] != "newDelivery"])
            == 2
        ):
            return [d2c("amm-1", "d-1", {"state": "Success"}, type="state")]
        return []

    transport = ScriptedTransport(answers=answers)

    outcome = session_for(transport).run("pkg", "1", timeout_seconds=5)

    assert outcome.url_requests == 2
    kinds = [m.properties["kind"] for _, m in transport.sent]
    assert kinds == ["newDelivery", "presignedUrlResponse", "presignedUrlResponse"]


def test_session_counts_foreign_messages_once_logged(caplog):
    def answers(message):
        return [
            d2c("amm-1", "other", {"state": "Success"}, type="state"),
            d2c("amm-2", "d-1", {"state": "Success"}, type="state"),
            d2c("amm-1", "other", {"state": "Error"}, type="state"),
            d2c(
                "amm-1", "d-1", {"state": "Error", "reason": "disk full"}, type="state"
            ),
        ]

    transport = ScriptedTransport(answers=answers)
    caplog.set_level(logging.INFO, logger="delivery_protocol")

    outcome = session_for(transport).run("pkg", "1", timeout_seconds=5)

    assert outcome.ignored_messages == 3
    assert outcome.final_state == "Error"
    assert outcome.reason == "disk full"
    infos = [r for r in caplog.records if "another delivery" in r.getMessage()]
    assert len([r for r in infos if r.levelno == logging.INFO]) == 1
    assert "deliveryId=other" in infos[0].getMessage()


def test_session_skips_state_without_state_field(caplog):
    transport = ScriptedTransport(
        answers=lambda m: [
            d2c("amm-1", "d-1", {"status": "Success"}, type="state"),
            d2c("amm-1", "d-1", {"state": "Success"}, type="state"),
        ]
    )
    caplog.set_level(logging.WARNING)

    outcome = session_for(transport).run("pkg", "1", timeout_seconds=5)

    assert [s.state for s in outcome.states] == ["Success"]
    assert 'body is not {"state": ...}' in caplog.text
