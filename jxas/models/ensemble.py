"""Ensembles: member parameters stacked on a leading axis, evaluated with ``vmap`` over members."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jxas.structure import Structure

__all__ = ["stack_members", "unstack_members", "n_members", "ensemble_apply", "ensemble_mean_std"]


def stack_members(members: Sequence[Any]) -> Any:
    """Stack the parameter pytrees of independently trained members: every leaf gets a leading [M] axis."""
    if len(members) == 0:
        raise ValueError("an ensemble needs at least one member")
    structure = jax.tree.structure(members[0])
    for i, m in enumerate(members[1:], 1):
        if jax.tree.structure(m) != structure:
            raise ValueError(f"ensemble member {i} has a different parameter structure from member 0")
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *members)


def unstack_members(params: Any) -> list[Any]:
    """Split stacked ensemble parameters back into a list of member pytrees."""
    m = n_members(params)
    return [jax.tree.map(lambda x, i=i: x[i], params) for i in range(m)]


def n_members(params: Any) -> int:
    """Number of members M (the common leading axis of every leaf)."""
    sizes = {jnp.shape(x)[0] for x in jax.tree.leaves(params)}
    if len(sizes) != 1:
        raise ValueError(f"ensemble parameters must share one leading member axis, got sizes {sorted(sizes)}")
    return sizes.pop()


def ensemble_apply(
    apply_fn: Callable[[Any, Structure], Float[Array, " e"]], params: Any, structure: Structure
) -> Float[Array, "m e"]:
    """Evaluate every member on one structure: ``vmap`` of ``apply_fn(member_params, structure)``."""
    return jax.vmap(apply_fn, in_axes=(0, None))(params, structure)


def ensemble_mean_std(mu: Float[Array, "... m e"]) -> tuple[Float[Array, "... e"], Float[Array, "... e"]]:
    """Mean and (population) standard deviation over the member axis (-2); std = 0 for one member."""
    return jnp.mean(mu, axis=-2), jnp.std(mu, axis=-2)
