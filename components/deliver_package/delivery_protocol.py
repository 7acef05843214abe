"""Cloud side of AI Model Manager's delivery protocol over a swappable transport.

1. Send a cloud-to-device (C2D) message ``type=event, kind=newDelivery`` with
   ``deliveryId`` and ``projectId``; the body names the package.
2. Wait for a device-to-cloud (D2C) ``kind=presignedUrlRequest`` with the same
   ``deliveryId``, then reply with C2D ``type=data, kind=presignedUrlResponse``
   whose body carries ``attributes.presignedUrl``.
3. Read D2C ``type=state`` messages, bodies ``{"state": ...}``, until
   ``Success`` or ``Error``.

Messages of other deliveries are counted and ignored. Messages may arrive more
than once (IoT Hub and MQTT QoS 1 deliver at least once), so every
``presignedUrlRequest`` of this delivery gets a reply.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Self

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
NEW_DELIVERY = "newDelivery"
URL_REQUEST = "presignedUrlRequest"
URL_RESPONSE = "presignedUrlResponse"
SUCCESS = "Success"
ERROR = "Error"
FINAL_STATES = (SUCCESS, ERROR)
RECEIVE_POLL_SECONDS = 0.5


class TransientSendError(RuntimeError):
    """A send failed in a way that may succeed when tried again."""


class DeliveryTimeoutError(RuntimeError):
    """The device did not report a final state in time."""

    def __init__(self, message: str, outcome: DeliveryOutcome):
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class C2DMessage:
    """A cloud-to-device message; ``contentType`` becomes a system property."""

    properties: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class D2CMessage:
    """A device-to-cloud message with its application properties decoded to str."""

    device_id: str
    properties: dict[str, str]
    body: bytes
    content_type: str | None = None


class Transport(abc.ABC):
    """Sends C2D messages to devices and receives their D2C messages."""

    name = "transport"

    @abc.abstractmethod
    def open(self, device_id: str) -> None:
        """Start receiving D2C messages of ``device_id``; call before sending."""

    @abc.abstractmethod
    def send_c2d(self, device_id: str, message: C2DMessage) -> None:
        """Send ``message``; raise TransientSendError when a retry may help."""

    @abc.abstractmethod
    def receive(self, timeout: float) -> D2CMessage | None:
        """Return the next D2C message, or None after ``timeout`` seconds."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``attempts`` tries, delays doubling up to ``max_delay``."""

    attempts: int = 5
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_delay
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay)
            delay *= self.multiplier


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class StateEvent:
    state: str
    received_at: str
    reason: str | None = None


@dataclass
class DeliveryOutcome:
    delivery_id: str
    device_id: str
    final_state: str | None = None
    reason: str | None = None
    states: list[StateEvent] = field(default_factory=list)
    url_requests: int = 0
    ignored_messages: int = 0
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0

    @property
    def last_state(self) -> str | None:
        return self.states[-1].state if self.states else None

    @property
    def succeeded(self) -> bool:
        return self.final_state == SUCCESS


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _json_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode(CONTENT_ENCODING)


def new_delivery_message(
    delivery_id: str,
    project_id: str,
    package_id: str,
    package_version: str,
    *,
    event_id: str | None = None,
    timestamp: str | None = None,
) -> C2DMessage:
    properties = {
        "type": "event",
        "kind": NEW_DELIVERY,
        "deliveryId": delivery_id,
        "projectId": project_id,
        "contentType": CONTENT_TYPE,
    }
    body = {
        "packageId": package_id,
        "packageVersion": package_version,
        "eventId": event_id or str(uuid.uuid4()),
        "timestamp": timestamp or utc_now(),
    }
    return C2DMessage(properties, _json_body(body))


def url_response_message(
    delivery_id: str, project_id: str, url: str, *, timestamp: str | None = None
) -> C2DMessage:
    properties = {
        "type": "data",
        "kind": URL_RESPONSE,
        "deliveryId": delivery_id,
        "projectId": project_id,
        "contentType": CONTENT_TYPE,
    }
    body = {"timestamp": timestamp or utc_now(), "attributes": {"presignedUrl": url}}
    return C2DMessage(properties, _json_body(body))


def send_with_retry(
    transport: Transport,
    device_id: str,
    message: C2DMessage,
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send ``message``, retrying TransientSendError with exponential backoff."""
    kind = message.properties.get("kind")
    delays = policy.delays()
    for attempt in range(1, policy.attempts + 1):
        try:
            transport.send_c2d(device_id, message)
            return
        except TransientSendError as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientSendError(
                    f"Sending {kind} to device {device_id} failed {attempt} times; "
                    f"last error: {exc}. Check the connection to the "
                    f"{transport.name} endpoint."
                ) from exc
            logger.warning(
                "Sending %s to device %s failed (attempt %d of %d): %s; "
                "retrying in %.1f s",
                kind,
                device_id,
                attempt,
                policy.attempts,
                exc,
                delay,
            )
            sleep(delay)


def _parse_state(message: D2CMessage) -> tuple[str, str | None] | None:
    try:
        body = json.loads(message.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("state"), str):
        return None
    reason = body.get("reason") or body.get("message")
    return body["state"], str(reason) if reason else None


class DeliverySession:
    """One delivery to one device: sends, receives and records what happened."""

    def __init__(
        self,
        transport: Transport,
        *,
        device_id: str,
        project_id: str,
        presigned_url: Callable[[], str],
        delivery_id: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.transport = transport
        self.device_id = device_id
        self.project_id = project_id
        self.presigned_url = presigned_url
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self.outcome = DeliveryOutcome(delivery_id or str(uuid.uuid4()), device_id)

    @property
    def delivery_id(self) -> str:
        return self.outcome.delivery_id

    def send(self, message: C2DMessage) -> None:
        send_with_retry(
            self.transport, self.device_id, message, self.retry, sleep=self.sleep
        )

    def run(
        self, package_id: str, package_version: str, timeout_seconds: float
    ) -> DeliveryOutcome:
        """Deliver the package; return at Success or Error, raise on timeout."""
        outcome = self.outcome
        outcome.started_at = utc_now()
        start = self.clock()
        self.transport.open(self.device_id)
        logger.info(
            "Delivery %s: sending newDelivery of %s version %s to device %s",
            self.delivery_id,
            package_id,
            package_version,
            self.device_id,
        )
        self.send(
            new_delivery_message(
                self.delivery_id, self.project_id, package_id, package_version
            )
        )
        deadline = start + timeout_seconds
        while outcome.final_state is None:
            remaining = deadline - self.clock()
            if remaining <= 0:
                self._finish(start)
                raise DeliveryTimeoutError(
                    self._timeout_message(timeout_seconds), outcome
                )
            message = self.transport.receive(min(remaining, RECEIVE_POLL_SECONDS))
            if message is not None:
                self.handle(message)
        self._finish(start)
        return outcome

    def _finish(self, start: float) -> None:
        self.outcome.finished_at = utc_now()
        self.outcome.seconds = round(self.clock() - start, 3)

    def handle(self, message: D2CMessage) -> None:
        delivery_id = message.properties.get("deliveryId")
        if message.device_id != self.device_id or delivery_id != self.delivery_id:
            self._ignore(message, delivery_id)
            return
        kind = message.properties.get("kind")
        message_type = message.properties.get("type")
        if message_type == "state":
            self._on_state(message)
        elif kind == URL_REQUEST:
            self._on_url_request()
        else:
            logger.info(
                "Delivery %s: ignoring message type=%s kind=%s",
                self.delivery_id,
                message_type,
                kind,
            )

    def _ignore(self, message: D2CMessage, delivery_id: str | None) -> None:
        self.outcome.ignored_messages += 1
        log = logger.info if self.outcome.ignored_messages == 1 else logger.debug
        log(
            "Delivery %s: ignoring a message of another delivery (deliveryId=%s, "
            "device %s, kind=%s, type=%s); such messages are counted in the report",
            self.delivery_id,
            delivery_id,
            message.device_id,
            message.properties.get("kind"),
            message.properties.get("type"),
        )

    def _on_url_request(self) -> None:
        self.outcome.url_requests += 1
        logger.info(
            "Delivery %s: device requested the package URL; sending a read-only "
            "SAS URL",
            self.delivery_id,
        )
        url = self.presigned_url()
        self.send(url_response_message(self.delivery_id, self.project_id, url))

    def _on_state(self, message: D2CMessage) -> None:
        parsed = _parse_state(message)
        if parsed is None:
            logger.warning(
                "Delivery %s: ignoring a state message whose body is not "
                '{"state": ...}',
                self.delivery_id,
            )
            return
        state, reason = parsed
        self.outcome.states.append(StateEvent(state, utc_now(), reason))
        logger.info(
            "Delivery %s: device %s reports %s%s",
            self.delivery_id,
            self.device_id,
            state,
            f" ({reason})" if reason else "",
        )
        if state in FINAL_STATES:
            self.outcome.final_state = state
            self.outcome.reason = reason

    def _timeout_message(self, timeout_seconds: float) -> str:
        outcome = self.outcome
        prefix = (
            f"Delivery {self.delivery_id} to device {self.device_id} timed out "
            f"after {timeout_seconds:g} s"
        )
        if outcome.last_state:
            return (
                f"{prefix}; last state seen: {outcome.last_state}. Check AI Model "
                "Manager's log on the device, or raise timeout_seconds for large "
                "packages."
            )
        if outcome.url_requests:
            return (
                f"{prefix}; last state seen: none. The device requested the package "
                f"URL {outcome.url_requests} time(s) but reported no state."
            )
        return (
            f"{prefix}; last state seen: none. The device sent no "
            "presignedUrlRequest after newDelivery: check that AI Model Manager is "
            "running, online and "
            f"connected to the hub as device {self.device_id}."
        )
