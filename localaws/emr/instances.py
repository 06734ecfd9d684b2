"""EC2 instance types, scaled down to Spark workers that fit on a laptop.

On AWS an EMR node is an EC2 instance: an ``m5.xlarge`` has 4 vCPUs and
16 GiB of RAM, and YARN hands most of that to Spark executors. Here a node
is one Spark worker process on this machine, so each instance type's real
size (from the EMR instance type list moto ships, the same figures
``ListSupportedInstanceTypes`` returns) is divided by a fixed factor:

- **cores**: 1 worker core per 4 vCPUs (at least 1, at most 2);
- **memory**: 1 MiB per 32 MiB of RAM (at least the executor heap bound of
  ``core/limits.py``, 512 MiB, which a Spark 4 executor needs; at most 2 GiB).
  A step's executors get the memory of the smallest worker instance.

So an ``m5.xlarge`` (4 vCPU, 16 GiB) becomes a 1-core, 512 MiB worker and an
``m5.4xlarge`` (16 vCPU, 64 GiB) a 2-core, 2 GiB one. The relative sizes
survive; the absolute ones do not.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from localaws.core.limits import heap_mb

VCPU_PER_CORE = 4
RAM_DIVISOR = 32
MIN_MEMORY_MB, MAX_MEMORY_MB = heap_mb("spark-executor"), 2048
MAX_CORES = 2


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float

    @property
    def worker_cores(self) -> int:
        return max(1, min(MAX_CORES, self.vcpu // VCPU_PER_CORE))

    @property
    def worker_memory_mb(self) -> int:
        mb = int(self.memory_gib * 1024 / RAM_DIVISOR)
        return max(MIN_MEMORY_MB, min(MAX_MEMORY_MB, mb))


@functools.lru_cache(maxsize=1)
def _catalog() -> dict:
    from moto.utilities.utils import load_resource
    return load_resource("emr/resources/instance_types.json")


def lookup(name: str) -> InstanceType | None:
    """The instance type called ``name``, or None if EMR does not offer it."""
    spec = _catalog().get(name)
    if spec is None:
        return None
    return InstanceType(name, int(spec["VCPU"]), float(spec["MemoryGB"]))
