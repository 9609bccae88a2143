"""Data-parallel placement with ``jax.sharding``: batches split over devices, parameters replicated.

With the batch sharded along a 1-D ``data`` mesh axis and the parameters replicated, ``jax.jit``
propagates the shardings through the loss: each device computes the loss terms of its part of the
batch and XLA inserts the all-reduce that makes the mean loss and its gradient identical on every
device. On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX starts) gives
four devices to test with.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["data_mesh", "batch_sharding", "replicated_sharding", "shard_batch"]


@functools.lru_cache(maxsize=8)
def data_mesh(n_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over the first ``n_devices`` devices (default: all)."""
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    if not 1 <= n <= len(devices):
        raise ValueError(
            f"asked for {n} devices but JAX sees {len(devices)} ({devices[0].platform}); on CPU set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax"
        )
    return Mesh(np.asarray(devices[:n]), ("data",))


def batch_sharding(n_devices: int | None = None) -> NamedSharding:
    """Sharding that splits the leading (entry) axis of every leaf over the ``data`` axis."""
    return NamedSharding(data_mesh(n_devices), PartitionSpec("data"))


def replicated_sharding(n_devices: int | None = None) -> NamedSharding:
    """Sharding that keeps a full copy on every device (parameters, optimiser state)."""
    return NamedSharding(data_mesh(n_devices), PartitionSpec())


def shard_batch(batch, n_devices: int | None = None):
    """Place a batch pytree with its leading axis split over devices (its size must divide evenly)."""
    sh = batch_sharding(n_devices)
    n = sh.mesh.devices.size
    for x in jax.tree.leaves(batch):
        if np.shape(x)[0] % n:
            raise ValueError(f"batch of {np.shape(x)[0]} entries cannot be split evenly over {n} devices")
    return jax.device_put(batch, sh)
