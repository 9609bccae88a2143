"""The ``Spectrum`` container: absolute photon energy (eV) and absorption mu, plus metadata."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["Spectrum"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Spectrum:
    """An X-ray absorption spectrum.

    Attributes:
        energy: ``[e]`` absolute photon energy in eV (edge shifts carry chemistry: never relative).
        mu: ``[e]`` absorption (or ``[b, e]`` for a batch on a shared grid; ``[m, e]`` ensemble members).
        std: optional ``[e]`` standard deviation (e.g. an ensemble spread), same shape as ``mu``.
        meta: free-form metadata (source, element, edge, normalisation, ...); static, not traced.
    """

    energy: Float[Array, " e"]
    mu: Float[Array, "... e"]
    std: Float[Array, "... e"] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"static": True})

    def __post_init__(self):
        e = self.energy
        if hasattr(e, "shape") and hasattr(self.mu, "shape") and not isinstance(e, jax.core.Tracer):
            if jnp.ndim(e) != 1:
                raise ValueError(f"energy must be 1-D, got shape {jnp.shape(e)}")
            if jnp.shape(self.mu)[-1] != jnp.shape(e)[0]:
                raise ValueError(
                    f"mu has {jnp.shape(self.mu)[-1]} points on its last axis, energy has {jnp.shape(e)[0]}"
                )

    def replace(self, **changes) -> Spectrum:
        return dataclasses.replace(self, **changes)

    def __hash__(self):  # meta is a dict: hash by identity so the static field does not break jit
        return id(self)
