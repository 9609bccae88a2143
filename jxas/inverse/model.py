"""Spectrum -> structure networks and their bootstrap ensembles.

The base network is the 1D CNN of David, Penfold et al., Digital Discovery 2, 1461 (2023): three 1D
convolutions (kernel 8, stride 2), dense 256 and 128 ReLU layers, a linear output. jxas's version
("cnn_fft") adds, before the dense layers, the Fourier magnitudes of the post-edge oscillation
(:func:`jxas.inverse.features.fourier_features`) and predicts in one head, next to the 50 G2 terms,
the direct first-shell descriptors (distance, CN, composition, oxidation state). Outputs are learnt
standardised; the module maps them back to physical units with the training mean and standard deviation
that live in its configuration, so ``apply`` alone gives Å, counts and charges.

An ensemble is one set of parameters with every leaf stacked on a leading member axis ``[M, ...]``;
:func:`apply_members` evaluates all members with one ``vmap``.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["InverseCNN", "make_module", "init_members", "apply_members", "output_slices", "n_outputs", "combine"]


class InverseCNN(nn.Module):
    """1D CNN from a normalised spectrum (and optional Fourier features) to structural descriptors.

    Attributes:
        n_out: number of outputs.
        channels: output channels of the three convolutions.
        kernel, stride: convolution kernel size and stride (8 and 2 as published).
        dense: widths of the hidden dense layers (256, 128 as published).
        use_fft: concatenate the Fourier features to the flattened convolution output.
        y_mean, y_std: per-output training mean and standard deviation (physical units).
        heteroscedastic: also predict a standard deviation per output (mean-variance network, trained
            with a Gaussian likelihood); the output is then ``[mean (n_out), sigma (n_out)]``.
    """

    n_out: int
    channels: Sequence[int] = (16, 32, 32)
    kernel: int = 8
    stride: int = 2
    dense: Sequence[int] = (256, 128)
    use_fft: bool = False
    y_mean: Sequence[float] | None = None
    y_std: Sequence[float] | None = None
    heteroscedastic: bool = False

    @nn.compact
    def __call__(self, spec: Float[Array, " e"], fft: Float[Array, " f"] | None = None) -> Float[Array, " o"]:
        # centre the normalised spectrum (edge step 1) so the first layer sees values around 0
        x = (spec - 1.0)[:, None]
        for c in self.channels:
            x = nn.relu(nn.Conv(c, (self.kernel,), strides=(self.stride,), padding="VALID")(x))
        x = x.reshape(-1)
        if self.use_fft:
            if fft is None:
                raise ValueError("this network was built with use_fft=True and needs Fourier features")
            x = jnp.concatenate([x, fft])
        for w in self.dense:
            x = nn.relu(nn.Dense(w)(x))
        z = nn.Dense(2 * self.n_out if self.heteroscedastic else self.n_out)(x)
        mean = jnp.zeros(self.n_out) if self.y_mean is None else jnp.asarray(self.y_mean)
        std = jnp.ones(self.n_out) if self.y_std is None else jnp.asarray(self.y_std)
        if not self.heteroscedastic:
            return mean + std * z
        # log-sigma bounded so that sigma stays within [e^-7, e^3] standard deviations of the target
        log_s = 2.0 + 5.0 * jnp.tanh((z[self.n_out :] - 2.0) / 5.0)
        return jnp.concatenate([mean + std * z[: self.n_out], std * jnp.exp(log_s)])


def output_slices(outputs: Sequence[Sequence]) -> dict[str, slice]:
    """Name -> slice of the output vector, from ``config["outputs"]`` = [[name, size], ...]."""
    out, i = {}, 0
    for name, size in outputs:
        out[name] = slice(i, i + int(size))
        i += int(size)
    return out


def n_outputs(outputs: Sequence[Sequence]) -> int:
    return sum(int(s) for _, s in outputs)


def make_module(config: dict) -> InverseCNN:
    """Build the network of an inverse-model configuration (``config["arch"]`` "cnn" or "cnn_fft")."""
    arch = config.get("arch", "cnn_fft")
    if arch not in ("cnn", "cnn_fft"):
        raise ValueError(f"unknown inverse architecture {arch!r}; use 'cnn' (David et al. 2023) or 'cnn_fft'")
    return InverseCNN(
        n_out=n_outputs(config["outputs"]),
        channels=tuple(config.get("channels", (16, 32, 32))),
        kernel=int(config.get("kernel", 8)),
        stride=int(config.get("stride", 2)),
        dense=tuple(config.get("dense", (256, 128))),
        use_fft=arch == "cnn_fft",
        y_mean=tuple(config["y_mean"]) if config.get("y_mean") is not None else None,
        y_std=tuple(config["y_std"]) if config.get("y_std") is not None else None,
        heteroscedastic=bool(config.get("heteroscedastic", False)),
    )


def init_members(module: InverseCNN, n_members: int, n_energy: int, n_fft: int, *, key: Array):
    """Independent initial parameters of ``n_members`` networks, stacked on a leading member axis."""
    spec = jnp.ones((n_energy,), jnp.float32)
    fft = jnp.zeros((n_fft,), jnp.float32) if module.use_fft else None
    keys = jax.random.split(key, n_members)
    return jax.vmap(lambda k: module.init(k, spec, fft)["params"])(keys)


def apply_members(module: InverseCNN, params, spec: Float[Array, " e"], fft=None) -> Float[Array, "m o"]:
    """All ensemble members on one example: ``[M, n_out]`` (vmap over the member axis)."""
    return jax.vmap(lambda p: module.apply({"params": p}, spec, fft))(params)


def combine(pred, config: dict, extra_var=None):
    """Ensemble mean and (uncalibrated) sigma from member outputs ``[..., M, O or 2 O]``.

    Plain members: mean and standard deviation over members. Mean-variance members (Lakshminarayanan
    et al., NeurIPS 2017, eq. 2 mixture): sigma^2 = mean of the members' sigma^2 + variance of their means.
    ``extra_var`` ``[..., O]`` (e.g. the out-of-bag error model of :mod:`jxas.inverse.errmodel`) is added
    to the variance.
    """
    import numpy as np

    o = n_outputs(config["outputs"])
    pred = np.asarray(pred)
    mu = pred[..., :o]
    mean = mu.mean(-2)
    var = mu.var(-2)
    if config.get("heteroscedastic", False):
        var = var + (pred[..., o:] ** 2).mean(-2)
    if extra_var is not None:
        var = var + np.asarray(extra_var)
    return mean, np.sqrt(var)
