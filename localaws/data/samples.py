"""The small sample files committed under ``data/samples/``.

They let a reader see each format on GitHub without running anything, and
they double as a regression check: ``tests/test_data.py`` regenerates them
and fails if a generator's output changed without the samples being
refreshed (run ``python -m localaws.data.samples`` to refresh them).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .alb_logs import alb_access_log_lines
from .cloudtrail import cloudtrail_records
from .iot import iot_telemetry_lines
from .vpc_flow_logs import vpc_flow_log_lines

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples"


def sample_texts() -> dict[str, str]:
    """File name -> content of every sample (seed 0, a few records each).

    Plain text rather than gzip so they can be read in a browser; the
    generators' writers produce the gzip files AWS actually delivers.
    """
    return {
        "vpc_flow_logs.log": "\n".join(vpc_flow_log_lines(20)) + "\n",
        "alb_access_logs.log": "\n".join(alb_access_log_lines(20)) + "\n",
        "cloudtrail.json": json.dumps({"Records": cloudtrail_records(20)}, indent=2) + "\n",
        "iot_telemetry.jsonl": "\n".join(iot_telemetry_lines(40)) + "\n",
    }


def write_samples(directory=SAMPLES_DIR) -> list[Path]:
    """Write the samples into ``directory`` and return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sample_texts().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return sorted(paths)


if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES_DIR):
        print(written)
