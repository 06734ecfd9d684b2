"""IoT sensor telemetry: the stream a fleet of devices sends to the cloud.

Devices publish small JSON messages over MQTT to AWS IoT Core; an IoT rule
forwards them to Kinesis Data Streams or straight to Amazon Data Firehose,
which buffers them and writes batches to S3 (or OpenSearch, Redshift...).
This is the streaming chapter's raw material: one JSON object per reading,

    {"device_id": "sensor-007", "timestamp": "2026-10-01T00:05:00Z",
     "temperature": 21.4, "humidity": 45.2, "battery": 87.5, "status": "OK"}

with temperature in degrees Celsius, relative humidity and battery charge in
percent, and ``status`` one of ``OK``, ``LOW_BATTERY`` (charge under 15 %)
or ``ERROR`` (the sensor could not read; temperature and humidity are
``null``).

IoT payloads have no AWS-defined schema -- the device firmware decides --
so this layout is ours. What *is* AWS's is where Firehose puts the batches
in S3 (see :func:`write_iot_telemetry`):
https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html
"""
from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

from .logs import BASE_TIME, group_by_window, iso_utc, random_uuid, write_gzip

IOT_DEVICES = tuple(f"sensor-{i:03d}" for i in range(1, 21))
#: The planted anomalies: device -> what is wrong with it.
IOT_ANOMALIES = {
    "sensor-007": "temperature spikes of +25 to +40 degrees C in about 3% of readings",
    "sensor-013": "battery drains fast and ends under 15% (status LOW_BATTERY)",
    "sensor-017": "about 5% of readings fail (status ERROR, null temperature and humidity)",
}
LOW_BATTERY = 15.0


def iot_telemetry_records(n: int = 5760, *, seed: int = 0, start: datetime = BASE_TIME,
                          interval: timedelta = timedelta(minutes=5)) -> list[dict]:
    """``n`` readings from the 20 :data:`IOT_DEVICES`, in time order.

    Every ``interval`` each device reports once (the default, 5760 readings,
    is one day). Temperatures follow a daily cycle around each device's own
    base (18-26 degrees C) with noise; batteries lose 0.5-3 points over the
    run (the drain is scaled to the run's length, so that sensor-013 always
    ends under :data:`LOW_BATTERY`). The three devices in
    :data:`IOT_ANOMALIES` misbehave for every seed.
    """
    rng = random.Random(seed)
    steps = math.ceil(n / len(IOT_DEVICES))
    base = {d: rng.uniform(18, 26) for d in IOT_DEVICES}
    humidity = {d: rng.uniform(35, 55) for d in IOT_DEVICES}
    battery = {d: rng.uniform(70, 100) for d in IOT_DEVICES}
    drain = {d: rng.uniform(0.5, 3.0) / steps for d in IOT_DEVICES}  # 0.5-3 points over the run
    battery["sensor-013"], drain["sensor-013"] = rng.uniform(30, 40), 28.0 / steps
    records = []
    for step in range(steps):
        moment = start + step * interval
        hour = moment.hour + moment.minute / 60
        daily = 3.0 * math.sin((hour - 9) / 24 * 2 * math.pi)  # warmest mid-afternoon
        for device in IOT_DEVICES:
            if len(records) == n:
                break
            battery[device] = max(battery[device] - drain[device], 0.0)
            temperature = base[device] + daily + rng.gauss(0, 0.4)
            if device == "sensor-007" and rng.random() < 0.03:
                temperature += rng.uniform(25, 40)
            reading = {"device_id": device, "timestamp": iso_utc(moment),
                       "temperature": round(temperature, 2),
                       "humidity": round(min(max(humidity[device] + rng.gauss(0, 2), 0), 100), 1),
                       "battery": round(battery[device], 1), "status": "OK"}
            if battery[device] < LOW_BATTERY:
                reading["status"] = "LOW_BATTERY"
            if device == "sensor-017" and rng.random() < 0.05:
                reading.update(temperature=None, humidity=None, status="ERROR")
            records.append(reading)
    return records


def iot_telemetry_lines(n: int = 5760, *, seed: int = 0, start: datetime = BASE_TIME,
                        interval: timedelta = timedelta(minutes=5)) -> list[str]:
    """The same readings as JSON lines (one compact JSON object per string)."""
    return [json.dumps(r, separators=(",", ":"))
            for r in iot_telemetry_records(n, seed=seed, start=start, interval=interval)]


def write_iot_telemetry(directory, n: int = 5760, *, seed: int = 0, start: datetime = BASE_TIME,
                        interval: timedelta = timedelta(minutes=5),
                        stream_name: str = "iot-telemetry",
                        buffer_interval: timedelta = timedelta(minutes=15)) -> list[Path]:
    """Write the readings under ``directory`` as Firehose delivers them to S3.

    Firehose buffers records (here for ``buffer_interval``) and writes each
    buffer as one object, GZIP-compressed, newline-delimited JSON, keyed by
    its default time prefix and suffix (UTC)::

        YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>.gz

    The timestamps are those of the oldest record in the object; the stream
    version is 1 (it counts configuration changes). Returns the paths, sorted.
    """
    records = iot_telemetry_records(n, seed=seed, start=start, interval=interval)
    rng = random.Random(f"iot-files-{seed}")

    def reading_time(record):
        return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))

    paths = []
    for _, batch in group_by_window(records, reading_time, buffer_interval).items():
        oldest = reading_time(batch[0])
        name = f"{stream_name}-1-{oldest:%Y-%m-%d-%H-%M-%S}-{random_uuid(rng)}.gz"
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in batch)
        paths.append(write_gzip(Path(directory) / f"{oldest:%Y/%m/%d/%H}" / name, text))
    return sorted(paths)
