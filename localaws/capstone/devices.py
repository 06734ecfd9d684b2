"""Simulated devices: a fleet of sensors publishing telemetry over MQTT.

Each device reports every ``interval`` seconds a small JSON message to the
MQTT topic ``fleet/<device_id>/telemetry``::

    {"record_id": "d03-000017", "device_id": "d03", "kind": "telemetry",
     "ts": "2026-01-01 00:02:50.000", "seq": 17,
     "temp_c": 21.4, "humidity": 45.2, "battery": 87.5}

- ``record_id`` is ``<device>-<sequence number>``: deterministic and unique,
  the key every later stage deduplicates on (Redshift's MERGE, the
  reconciliation). A device that re-sends a message re-sends the same id.
- ``ts`` is the *event time*, when the sensor read, in simulated time from
  :data:`START` (the same on every run, whatever the wall clock says). Flink's
  windows, the ``dt`` partition and Athena's answers all use it.
- ``kind`` is ``telemetry``; now and then a device sends a ``test`` message
  (firmware self-test) that the IoT rule's ``WHERE`` filters out.

Readings are seeded (``random.Random(seed)``): same seed, same messages. The
ideas (a base temperature per device, noise, a draining battery) are those
of ``localaws/data/iot.py``; the layout is this pipeline's own.

A **burst** is a device flushing its offline buffer: ``count`` readings
taken during the previous minute, published within one second. Over 1,000
records in one second exceed a Kinesis shard's write limit: the IoT rule's
``kinesis`` action fails for the excess and its ``errorAction`` keeps them.

Publishing goes through ``iot-data`` ``Publish`` (HTTPS publish to the
broker: on AWS your devices would use MQTT over TLS with certificates).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

#: Simulated time zero: the first reading's event time.
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: One in this many messages of a device is a firmware self-test (kind "test").
TEST_EVERY = 23


def device_ids(n: int) -> list[str]:
    """``["d00", "d01", ...]``: the fleet's device ids."""
    return [f"d{i:02d}" for i in range(n)]


def topic(device_id: str) -> str:
    """The MQTT topic a device publishes its telemetry to."""
    return f"fleet/{device_id}/telemetry"


def event_time(seconds: float) -> str:
    """Seconds after :data:`START` as ``yyyy-MM-dd HH:mm:ss.SSS`` (what Flink's JSON format,
    the Firehose OpenX JSON SerDe and Athena all read as a timestamp)."""
    moment = START + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@dataclass
class Fleet:
    """``devices`` sensors reporting every ``interval`` seconds, seeded by ``seed``."""
    devices: int = 10
    interval: int = 10
    seed: int = 7

    def __post_init__(self):
        rng = random.Random(self.seed)
        self.ids = device_ids(self.devices)
        self._rng = rng
        self._base = {d: rng.uniform(18, 26) for d in self.ids}
        self._humidity = {d: rng.uniform(35, 55) for d in self.ids}
        self._battery = {d: rng.uniform(70, 100) for d in self.ids}
        self._seq = {d: 0 for d in self.ids}

    def _reading(self, device: str, seconds: float, kind: str = "telemetry") -> dict:
        rng = self._rng
        seq = self._seq[device]
        self._seq[device] += 1
        self._battery[device] = max(0.0, self._battery[device] - rng.uniform(0.0, 0.05))
        return {"record_id": f"{device}-{seq:06d}", "device_id": device, "kind": kind,
                "ts": event_time(seconds), "seq": seq,
                "temp_c": round(self._base[device] + rng.gauss(0, 0.8), 2),
                "humidity": round(self._humidity[device] + rng.gauss(0, 2), 1),
                "battery": round(self._battery[device], 1)}

    def slot(self, minute: int, slot: int) -> list[dict]:
        """The messages of every device for one reporting slot (``interval`` seconds) of ``minute``,
        devices in order. Every :data:`TEST_EVERY`-th message of a device is a self-test."""
        seconds = minute * 60 + slot * self.interval
        out = []
        for i, device in enumerate(self.ids):
            kind = "test" if (self._seq[device] * 7 + i) % TEST_EVERY == 0 and self._seq[device] else "telemetry"
            out.append(self._reading(device, seconds + i * 0.01, kind))
        return out

    def burst(self, device: str, minute: int, count: int) -> list[dict]:
        """``count`` readings ``device`` buffered while offline during the minute before ``minute``
        (event times spread over that minute), to be published in one second."""
        begin = max(0, minute - 1) * 60
        return [self._reading(device, begin + 60 * k / count) for k in range(count)]


def publish(iot_data, messages: list[dict]) -> int:
    """Publish each message to its device's topic (QoS 1); returns how many were published."""
    for message in messages:
        iot_data.publish(topic=topic(message["device_id"]), qos=1,
                         payload=json.dumps(message, separators=(",", ":")).encode())
    return len(messages)


__all__ = ["START", "Fleet", "device_ids", "event_time", "publish", "topic"]
