"""Pieces shared by the forward networks: element indexing, standardised positive output."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["element_index_table", "positive_output", "inverse_softplus", "ACTIVATIONS"]

ACTIVATIONS = {"silu": jax.nn.silu, "tanh": jnp.tanh, "gelu": jax.nn.gelu, "relu": jax.nn.relu}


def element_index_table(elements: Sequence[int]) -> np.ndarray:
    """Lookup table ``Z -> 1 + position of Z in elements`` (0 for elements the model never saw).

    Index 0 doubles as the padding / unknown row of the embedding; :meth:`jxas.models.Model.check`
    rejects structures with unknown elements before they reach the network.
    """
    table = np.zeros(119, np.int32)
    for i, z in enumerate(elements):
        if not 1 <= int(z) <= 118:
            raise ValueError(f"bad atomic number {z} in the model's element list")
        table[int(z)] = i + 1
    return table


def species_index(numbers: Int[Array, " n"], elements: Sequence[int]) -> Int[Array, " n"]:
    """Embedding index of every atom slot (0 for padding and unknown elements)."""
    table = jnp.asarray(element_index_table(elements))
    return table[jnp.clip(numbers, 0, 118)]


def inverse_softplus(y: np.ndarray) -> np.ndarray:
    """x with softplus(x) = y, for y > 0 (NumPy, host side)."""
    y = np.maximum(np.asarray(y, np.float64), 1e-6)
    return y + np.log(-np.expm1(-y))


def positive_output(
    y: Float[Array, " e"], mu_mean: Sequence[float] | None, mu_std: Sequence[float] | None
) -> Float[Array, " e"]:
    """Map a standardised network output to a positive spectrum.

    mu = softplus(b + s * y) with b = softplus^-1(mean) and s = std / sigmoid(b), so that near y = 0 the
    output is mean + std * y (softplus'(b) = sigmoid(b)): a network that outputs unit-variance values
    reproduces the training spectra's mean and spread, and mu > 0 everywhere (absorption is positive).
    Without statistics (an untrained model) mean = 1 and std = 0.2.
    """
    n = y.shape[-1]
    mean = np.ones(n) if mu_mean is None else np.asarray(mu_mean, np.float64)
    std = np.full(n, 0.2) if mu_std is None else np.maximum(np.asarray(mu_std, np.float64), 1e-4)
    if mean.shape != (n,) or std.shape != (n,):
        raise ValueError(f"output statistics have {mean.shape} / {std.shape} points, the network outputs {n}")
    b = inverse_softplus(mean)
    s = std * (1.0 + np.exp(-b))  # std / sigmoid(b)
    return jax.nn.softplus(jnp.asarray(b, y.dtype) + jnp.asarray(s, y.dtype) * y)
