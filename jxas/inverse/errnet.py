"""Learned error model: a spectrum's expected G2 squared error from what the ensemble and the data say about it.

The out-of-bag k-NN error model (:mod:`jxas.inverse.errmodel`) reads the expected error off the
nearest training spectra only. Several other per-spectrum signals each follow the G2 error a little
(Spearman 0.3-0.6 on the Fe and Cu validation splits): the members' disagreement, the mean-variance
heads' sigma, the distance to the training spectra, the predicted first shell (heavy donors give
large G2 terms and large errors) and the shape of the spectrum. This model combines them: a small
ensemble of multilayer perceptrons regresses the log of the per-spectrum G2 mean squared error
(MSE) on these features, learnt from the *out-of-bag* errors of the training entries (the errors of
the members that never drew the entry's group, i.e. errors on unseen complexes; Breiman 1996), with
the features of a training entry computed as for a new spectrum: from its out-of-bag members only,
and with neighbours of its own group excluded. The predicted MSE is spread over the G2 outputs with
their mean out-of-bag error profile and added to the ensemble variance,
``sigma_j^2 = var_ens_j + exp(log_mse_hat) profile_j``; the per-output scale is then fitted on validation
(:func:`jxas.inverse.calibrate.fit_scale`) as for the plain ensemble.

A learned variance/error predictor of this kind is the "secondary" uncertainty model of e.g.
Jain et al., "DEUP: Direct Epistemic Uncertainty Prediction", TMLR (2023), here with out-of-bag errors
as its targets instead of a held-out split.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jxas.inverse.errmodel import oob_squared_errors
from jxas.inverse.model import output_slices
from jxas.inverse.targets import g2_grid

__all__ = ["ErrorNet", "error_features", "fit_mlp", "apply_mlp", "FILE"]

FILE = "errnet.npz"
N_PCA = 16
FIRST_SHELL = (1.5, 2.5)  # Å: the G2 terms that carry most of the squared error (56-61 % for Fe)


def _knn(q: np.ndarray, lib: np.ndarray, k: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean Euclidean distance to, and indices of, the ``k`` nearest library rows (``exclude`` [N, L] masks rows)."""
    q, lib = q.astype(np.float64), lib.astype(np.float64)
    d = (q**2).sum(1)[:, None] - 2.0 * q @ lib.T + (lib**2).sum(1)[None]
    d = np.sqrt(np.maximum(d, 0.0))
    if exclude is not None:
        d = np.where(exclude, np.inf, d)
    nn = np.argpartition(d, k - 1, axis=1)[:, :k]
    return np.take_along_axis(d, nn, 1).mean(1), nn


def error_features(members: np.ndarray, spectra: np.ndarray, config: dict, library: np.ndarray,
                   library_mse: np.ndarray, pca_mean: np.ndarray, pca_basis: np.ndarray, *, k: int = 5,
                   use: np.ndarray | None = None, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-spectrum features ``[N, F]`` of the error model (order fixed; see the module docstring).

    Args:
        members: ``[N, M, O]`` member outputs (``[N, M, 2 O]`` for mean-variance members).
        spectra: ``[N, E]`` normalised spectra on the model grid.
        config: the inverse model's configuration (output layout, heteroscedastic flag).
        library, library_mse: ``[L, E]`` training spectra and their out-of-bag G2 MSE ``[L]``.
        pca_mean, pca_basis: ``[E]`` and ``[P, E]``: projection of the spectrum on the training spectra's
            principal components.
        k: neighbours for the distance and neighbour-error features.
        use: ``[N, M]`` members to use per spectrum (out-of-bag members for training entries); default all.
        exclude: ``[N, L]`` library rows that may not serve as neighbours (the entry's own group).
    """
    members, spectra = np.asarray(members, np.float64), np.asarray(spectra, np.float64)
    if members.ndim != 3 or spectra.ndim != 2 or len(members) != len(spectra):
        raise ValueError(f"members must be [N, M, O] and spectra [N, E], got {members.shape} and {spectra.shape}")
    if spectra.shape[1] != library.shape[1]:
        raise ValueError(f"spectra have {spectra.shape[1]} points, the error model's library {library.shape[1]}")
    sl = output_slices(config["outputs"])
    o = sum(int(s) for _, s in config["outputs"])
    g = sl["g2"]
    wm = np.ones(members.shape[:2]) if use is None else np.asarray(use, float)
    nm = wm.sum(1)
    if np.any(nm < 2):
        raise ValueError("every spectrum needs at least 2 members for a spread")
    mu = members[..., :o]
    mean = np.einsum("nmo,nm->no", mu, wm) / nm[:, None]
    var = np.einsum("nmo,nm->no", (mu - mean[:, None]) ** 2, wm) / (nm - 1)[:, None]
    r = np.asarray(g2_grid())
    fs = (r >= FIRST_SHELL[0]) & (r < FIRST_SHELL[1])
    cols = [np.log(var[:, g].mean(1) + 1e-8), np.log(var[:, g][:, fs].mean(1) + 1e-8),
            np.log(var[:, sl["r1"]][:, 0] + 1e-10), np.log(var[:, sl["cn"]][:, 0] + 1e-10),
            np.log(var[:, sl["comp"]].sum(1) + 1e-10)]
    if config.get("heteroscedastic", False):
        s2 = np.einsum("nmo,nm->no", members[..., o:] ** 2, wm) / nm[:, None]
        cols += [np.log(s2[:, g].mean(1)), np.log(s2[:, sl["r1"]][:, 0]), np.log(s2[:, sl["cn"]][:, 0]),
                 np.log(s2[:, sl["comp"]].sum(1))]
    dist, nn = _knn(spectra, library, k, exclude)
    cols += [np.log(dist + 1e-6), np.log(library_mse[nn].mean(1) + 1e-8)]
    cols += [mean[:, sl["r1"]][:, 0], mean[:, sl["cn"]][:, 0], np.log(np.abs(mean[:, g]).sum(1) + 1e-3)]
    cols += list(mean[:, sl["comp"]].T)
    if "ox" in sl:
        cols.append(mean[:, sl["ox"]][:, 0])
    cols += [spectra.max(1), np.argmax(spectra > 0.5, axis=1).astype(float), spectra[:, spectra.shape[1] // 2 :].std(1)]
    x = np.stack(cols, 1)
    return np.concatenate([x, (spectra - pca_mean) @ pca_basis.T], 1)


def _mlp(p, x):
    h = jax.nn.relu(x @ p["w1"] + p["b1"])
    h = jax.nn.relu(h @ p["w2"] + p["b2"])
    return h @ p["w3"] + p["b3"]


def apply_mlp(params: dict, x) -> np.ndarray:
    """Mean over the stacked networks (leading axis of every leaf) of their outputs for inputs ``[N, F]``."""
    out = jax.vmap(lambda p: _mlp(p, jnp.asarray(x, jnp.float32)))(params)
    return np.asarray(out, np.float64).mean(0)


def fit_mlp(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, key: jax.Array, n_nets: int = 5, hidden: int = 64,
            steps: int = 3000, lr: float = 1e-3, weight_decay: float = 1e-3, holdout: float = 0.2) -> dict:
    """An ensemble of 2-hidden-layer ReLU networks regressing ``y`` ``[N]`` on standardised ``x`` ``[N, F]``.

    Full-batch Adam; each network keeps the parameters with the lowest squared error on its own random
    ``holdout`` fraction of the *groups* (checked every 50 steps), so that the stopping point is chosen
    on complexes it did not fit. Returns the member-stacked parameters (leading axis ``n_nets``).
    """
    x, y, groups = np.asarray(x, np.float32), np.asarray(y, np.float32), np.asarray(groups).astype(str)
    if x.ndim != 2 or y.shape != (len(x),) or len(groups) != len(x):
        raise ValueError(f"x must be [N, F], y [N], groups [N]; got {x.shape}, {y.shape}, {groups.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("error-model features or targets have NaN or infinite values")
    ug = np.unique(groups)
    if len(ug) < 5:
        raise ValueError(f"need at least 5 groups to hold some out, got {len(ug)}")
    d = x.shape[1]
    opt = optax.adam(lr)

    def loss(p, xa, ya):
        l2 = sum(jnp.sum(p[w] ** 2) for w in ("w1", "w2", "w3"))
        return jnp.mean((_mlp(p, xa) - ya) ** 2) + weight_decay * l2

    @jax.jit
    def step(p, st, xa, ya):
        grads = jax.grad(loss)(p, xa, ya)
        up, st = opt.update(grads, st)
        return optax.apply_updates(p, up), st

    nets = []
    for key_i in jax.random.split(key, n_nets):
        k_init, k_hold = jax.random.split(key_i)
        k1, k2, k3 = jax.random.split(k_init, 3)
        p = {"w1": jax.random.normal(k1, (d, hidden)) / np.sqrt(d), "b1": jnp.zeros(hidden),
             "w2": jax.random.normal(k2, (hidden, hidden)) / np.sqrt(hidden), "b2": jnp.zeros(hidden),
             "w3": jax.random.normal(k3, (hidden,)) / np.sqrt(hidden), "b3": jnp.zeros(())}
        hold_groups = np.asarray(jax.random.permutation(k_hold, len(ug)))[: max(1, int(holdout * len(ug)))]
        ho = np.isin(groups, ug[hold_groups])
        xa, ya, xh, yh = jnp.asarray(x[~ho]), jnp.asarray(y[~ho]), jnp.asarray(x[ho]), jnp.asarray(y[ho])
        st = opt.init(p)
        best, best_p = np.inf, p
        for i in range(steps):
            p, st = step(p, st, xa, ya)
            if i % 50 == 0:
                v = float(jnp.mean((_mlp(p, xh) - yh) ** 2))
                if v < best:
                    best, best_p = v, p
        nets.append(best_p)
    return jax.tree.map(lambda *a: np.stack([np.asarray(b, np.float32) for b in a]), *nets)


class ErrorNet:
    """Spectrum + member outputs -> expected squared error of every output ``[N, O]`` (zero outside G2).

    Attributes:
        library, library_mse: training spectra ``[L, E]`` and their out-of-bag G2 MSE ``[L]``.
        pca_mean, pca_basis: spectrum projection (``[E]``, ``[P, E]``).
        x_mean, x_std: feature standardisation; y_mean, y_std: standardisation of log MSE.
        params: stacked MLP parameters; profile: ``[O]`` share of the MSE per output (mean 1 over G2).
        k: neighbours.
    """

    ARRAYS = ("library", "library_mse", "pca_mean", "pca_basis", "x_mean", "x_std", "profile")

    def __init__(self, config: dict, *, library, library_mse, pca_mean, pca_basis, x_mean, x_std, y_mean: float,
                 y_std: float, params: dict, profile, k: int = 5):
        self.config = {"outputs": config["outputs"], "heteroscedastic": bool(config.get("heteroscedastic", False))}
        self.library = np.asarray(library, np.float32)
        self.library_mse = np.asarray(library_mse, np.float64)
        self.pca_mean, self.pca_basis = np.asarray(pca_mean, np.float64), np.asarray(pca_basis, np.float64)
        self.x_mean, self.x_std = np.asarray(x_mean, np.float64), np.asarray(x_std, np.float64)
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        self.params = {key: np.asarray(v, np.float32) for key, v in params.items()}
        self.profile = np.asarray(profile, np.float64)
        self.k = int(k)
        if self.library.ndim != 2 or self.library_mse.shape != (len(self.library),):
            raise ValueError(f"library {self.library.shape} and library_mse {self.library_mse.shape} do not match")
        if not 1 <= self.k <= len(self.library):
            raise ValueError(f"k must lie in 1..{len(self.library)}, got {k}")
        if self.params["w1"].shape[1] != len(self.x_mean):
            raise ValueError(f"the networks take {self.params['w1'].shape[1]} features, the scaler {len(self.x_mean)}")

    def features(self, spectra, members, *, use=None, exclude=None) -> np.ndarray:
        return error_features(members, spectra, self.config, self.library, self.library_mse, self.pca_mean,
                              self.pca_basis, k=self.k, use=use, exclude=exclude)

    def log_mse(self, spectra, members) -> np.ndarray:
        """Predicted log G2 MSE ``[N]`` of spectra ``[N, E]`` with member outputs ``[N, M, O(2O)]``."""
        x = (self.features(spectra, members) - self.x_mean) / self.x_std
        return apply_mlp(self.params, x) * self.y_std + self.y_mean

    def __call__(self, spectra, members) -> np.ndarray:
        """Error-model variance ``[N, O]`` (``[O]`` for one spectrum ``[E]`` with members ``[M, O]``)."""
        s, m = np.asarray(spectra), np.asarray(members)
        single = s.ndim == 1
        if single:
            s, m = s[None], m[None]
        v = np.exp(self.log_mse(s, m))[:, None] * self.profile[None]
        return v[0] if single else v

    @classmethod
    def fit(cls, config: dict, spectra: np.ndarray, members: np.ndarray, y: np.ndarray, weights: np.ndarray,
            groups: np.ndarray, *, key: jax.Array, k: int = 5, **mlp_kw) -> ErrorNet:
        """From the training entries: spectra ``[N, E]``, member outputs ``[N, M, O(2O)]``, targets ``[N, O]``,
        bootstrap multiplicities ``[N, M]`` and groups ``[N]`` (out-of-bag errors are the targets)."""
        o = sum(int(s) for _, s in config["outputs"])
        g = output_slices(config["outputs"])["g2"]
        err2, ok = oob_squared_errors(np.asarray(members)[..., :o], y, weights)
        use = (np.asarray(weights) == 0) & ok[:, None]
        ok &= use.sum(1) >= 2
        if ok.sum() < 20:
            raise ValueError(f"only {int(ok.sum())} training entries have 2+ out-of-bag members; need 20")
        spectra, members, err2, use = np.asarray(spectra)[ok], np.asarray(members)[ok], err2[ok], use[ok]
        groups = np.asarray(groups).astype(str)[ok]
        mse = err2[:, g].mean(1)
        profile = np.zeros(err2.shape[1])
        profile[g] = err2[:, g].mean(0) / err2[:, g].mean()
        pca_mean = spectra.mean(0)
        _, _, vt = np.linalg.svd(spectra - pca_mean, full_matrices=False)
        basis = vt[:N_PCA]
        x = error_features(members, spectra, config, spectra, mse, pca_mean, basis, k=k, use=use,
                           exclude=groups[:, None] == groups[None])
        x_mean, x_std = x.mean(0), x.std(0) + 1e-9
        ly = np.log(mse + 1e-12)
        y_mean, y_std = ly.mean(), ly.std() + 1e-9
        params = fit_mlp((x - x_mean) / x_std, (ly - y_mean) / y_std, groups, key=key, **mlp_kw)
        return cls(config, library=spectra, library_mse=mse, pca_mean=pca_mean, pca_basis=basis, x_mean=x_mean,
                   x_std=x_std, y_mean=y_mean, y_std=y_std, params=params, profile=profile, k=k)

    def save(self, directory) -> Path:
        p = Path(directory) / FILE
        arrays = {a: getattr(self, a) for a in self.ARRAYS}
        arrays.update({f"mlp_{key}": v for key, v in self.params.items()})
        np.savez_compressed(p, y_mean=self.y_mean, y_std=self.y_std, k=np.int64(self.k),
                            heteroscedastic=self.config["heteroscedastic"],
                            outputs=np.asarray([f"{n}:{s}" for n, s in self.config["outputs"]]), **arrays)
        return p

    @classmethod
    def load(cls, directory) -> ErrorNet | None:
        """The learned error model saved in a model directory, or None if it has none."""
        p = Path(directory) / FILE
        if not p.is_file():
            return None
        try:
            z = np.load(p)
            outputs = [[s.split(":")[0], int(s.split(":")[1])] for s in z["outputs"].tolist()]
            params = {key[4:]: z[key] for key in z.files if key.startswith("mlp_")}
            return cls({"outputs": outputs, "heteroscedastic": bool(z["heteroscedastic"])},
                       **{a: z[a] for a in cls.ARRAYS}, y_mean=float(z["y_mean"]), y_std=float(z["y_std"]),
                       params=params, k=int(z["k"]))
        except (KeyError, ValueError, OSError, IndexError) as e:
            raise ValueError(f"{p}: not a valid learned error model ({e})") from None
