"""Training of inverse-model ensembles with the generic loop :func:`jxas.train.fit`.

Recipe (David et al., Digital Discovery 2, 1461 (2023), with jxas's changes marked *):

1. spectra resampled on the model grid (absolute eV) with a margin for shifts; targets from the
   structures (:mod:`jxas.inverse.targets`): 50 G2 terms, * first-shell distance, * CN,
   * composition, * oxidation state (where the dataset knows it);
2. a split by group (material / complex): train, validation (early stopping and sigma recalibration),
   test (reported, never touched by training);
3. a bootstrap ensemble of M members trained in ONE vmapped network: member m sees training entry n
   with weight w[n, m] = number of times its group was drawn in the m-th group bootstrap (a weighted
   loss is the same estimator as training on the resampled list, and lets one batch serve all members);
4. * augmentation of every training example: shift, extra Gaussian broadening, noise
   (:class:`jxas.inverse.features.AugmentConfig`); * Fourier features (architecture "cnn_fft");
5. * per-output sigma scale fitted on the validation set (:func:`jxas.inverse.calibrate.fit_scale`).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jxas.inverse import features as F
from jxas.inverse.calibrate import calibration_report, fit_scale
from jxas.inverse.errmodel import ErrorModel
from jxas.inverse.errnet import ErrorNet
from jxas.inverse.invmodel import InverseModel
from jxas.inverse.model import combine, init_members, make_module, n_outputs, output_slices
from jxas.inverse.targets import structure_targets

__all__ = ["InverseData", "prepare", "train_inverse", "loss_weights", "ensemble_predict", "gaussian_nll",
           "bootstrap_weights", "attach_error_model", "attach_error_net"]

MARGIN = 6.0  # eV kept beyond the model grid on each side so shifted copies stay inside real data


@dataclasses.dataclass
class InverseData:
    """Training arrays of an inverse model (host NumPy, entries on the leading axis).

    Attributes:
        store_energy: ``[S]`` grid (eV) of ``spec``: the model grid plus ``MARGIN`` on each side.
        spec: ``[N, S]`` normalised spectra.
        y: ``[N, O]`` targets (physical units), ``ymask``: ``[N, O]`` 1 where the target is known.
        groups: ``[N]`` group labels; ``donors``: atomic numbers of the composition outputs.
        outputs: ``[[name, size], ...]`` layout of ``y``.
    """

    store_energy: np.ndarray
    spec: np.ndarray
    y: np.ndarray
    ymask: np.ndarray
    groups: np.ndarray
    donors: list[int]
    outputs: list[list]

    def take(self, idx) -> InverseData:
        return dataclasses.replace(self, spec=self.spec[idx], y=self.y[idx], ymask=self.ymask[idx],
                                   groups=self.groups[idx])


def model_grid(lo: float, hi: float, step: float) -> np.ndarray:
    """Uniform absolute grid ``lo..hi`` (eV) with ``step``."""
    return lo + step * np.arange(int(round((hi - lo) / step)) + 1)


def prepare(dataset, grid: np.ndarray, *, donors=None, idx=None, max_donors: int = 8) -> InverseData:
    """Arrays for training/evaluating an inverse model from a :class:`jxas.data.Dataset`.

    Args:
        dataset: a ``jxas.data.Dataset`` (or any object with ``energy``, ``spectra(idx)``,
            ``structures(idx)``, ``groups``, ``oxidation_states``).
        grid: the model grid (eV); spectra are resampled on it plus ``MARGIN`` eV each side.
        donors: composition elements (atomic numbers); default the most frequent first-shell elements.
        idx: entries to use (default all).

    Raises:
        ValueError: non-finite spectra or structures without a first shell (naming the entries).
    """
    idx = np.arange(len(dataset)) if idx is None else np.asarray(idx)
    energy = np.asarray(dataset.energy, float)
    mu = np.asarray(dataset.spectra(idx), float)
    bad = np.flatnonzero(~np.all(np.isfinite(mu), axis=1))
    if bad.size:
        raise ValueError(f"dataset entries {idx[bad[:5]].tolist()} have non-finite spectra")
    step = float(grid[1] - grid[0])
    store = model_grid(grid[0] - MARGIN, grid[-1] + MARGIN, step)
    spec = np.stack([np.interp(store, energy, m) for m in mu]).astype(np.float32)
    structures = dataset.structures(idx)
    if donors is None:
        from jxas.inverse.targets import donor_elements

        donors = donor_elements(structures, max_elements=max_donors)
    t = structure_targets(structures, donors)
    ox = np.asarray(dataset.oxidation_states, float)[idx]
    known = ox > -90
    outputs = [["g2", 50], ["r1", 1], ["cn", 1], ["comp", len(donors) + 1], ["ox", 1]]
    y = np.concatenate([t["g2"], t["r1"][:, None], t["cn"][:, None], t["comp"],
                        np.where(known, ox, 0.0)[:, None]], axis=1).astype(np.float32)
    ymask = np.ones_like(y)
    ymask[:, -1] = known
    return InverseData(store, spec, y, ymask, np.asarray(dataset.groups)[idx], [int(d) for d in donors], outputs)


def loss_weights(outputs) -> np.ndarray:
    """Per-output loss weights: each block (G2, r1, CN, composition, ox) counts equally, r1 double."""
    w = []
    for name, size in outputs:
        block = 2.0 if name == "r1" else 1.0
        w += [block / int(size)] * int(size)
    w = np.asarray(w, np.float32)
    return w / w.sum()


def gaussian_nll(y, mean, sigma, *, beta: float = 0.0):
    """Elementwise Gaussian negative log-likelihood ``0.5 ((y - mean) / sigma)^2 + log sigma`` (constant dropped).

    The loss of mean-variance ensemble members (Lakshminarayanan et al., NeurIPS 2017, eq. 1). With
    ``beta > 0`` every term is weighted by ``stop_gradient(sigma^(2 beta))`` (beta-NLL, Seitzer et al.,
    ICLR 2022, eq. 5), which keeps badly fitted high-variance points from being ignored by the mean;
    ``beta = 0`` is the plain likelihood, whose minimiser over sigma is ``|y - mean|``.

    Args:
        y, mean, sigma: broadcastable arrays (same units; ``sigma > 0``).
        beta: beta-NLL exponent in [0, 1].
    """
    z = (y - mean) / sigma
    nll = 0.5 * z**2 + jnp.log(sigma)
    if beta == 0.0:
        return nll
    return jax.lax.stop_gradient(sigma ** (2.0 * beta)) * nll


def _features_fn(config: dict):
    """Per-example ``(spec_on_model_grid) -> (spec, fft or None)`` for a configuration."""
    grid = jnp.asarray(config["energy"], jnp.float32)
    use_fft = config.get("arch", "cnn_fft") == "cnn_fft"
    n_fft = int(config.get("n_fft", 24))

    def feats(spec):
        if not use_fft:
            return spec, None
        return spec, F.fourier_features(grid, spec, n_out=n_fft)

    return feats


def make_loss(config: dict, store_energy: np.ndarray, aug: F.AugmentConfig | None, *, stage: str = "nll"):
    """``loss_fn(params, batch, key) -> (loss, aux)`` for :func:`jxas.train.fit` (members stacked).

    ``batch`` = dict(spec [B, S], y [B, O], ymask [B, O], w [B, M]); with a key the spectra are augmented.
    Plain members learn the standardised squared error. Mean-variance members
    (``config["heteroscedastic"]``) learn the Gaussian NLL of :func:`gaussian_nll` (``config["nll_beta"]``,
    default 0) in ``stage="nll"``, and only their means, by squared error, in ``stage="mse"`` (the warm-up
    that keeps the variance head from explaining away a mean that has not been learnt yet).

    ``config["variance_data"]``: "in_bag" (default; Lakshminarayanan et al. 2017) fits mean and variance
    together on each member's bootstrap sample. "out_of_bag" fits the means by squared error on the
    bootstrap sample and the variance head by the NLL of the member's errors, held fixed, on the entries
    it did not draw (``batch["oob"]`` [B, M], 1 out of bag; validation passes ones): on small datasets
    in-sample errors shrink towards zero as the network memorises its groups, and a variance learnt
    from them does not carry over to new complexes; out-of-bag errors are errors on unseen groups.
    """
    if stage not in ("mse", "nll"):
        raise ValueError(f"stage must be 'mse' or 'nll', got {stage!r}")
    module = make_module(config)
    grid = jnp.asarray(config["energy"], jnp.float32)
    store = jnp.asarray(store_energy, jnp.float32)
    feats = _features_fn(config)
    y_std = jnp.asarray(config["y_std"], jnp.float32)
    lw = jnp.asarray(loss_weights(config["outputs"]))
    sl = output_slices(config["outputs"])
    het = bool(config.get("heteroscedastic", False))
    nll = het and stage == "nll"
    beta = float(config.get("nll_beta", 0.0))
    variance_data = config.get("variance_data", "in_bag")
    if variance_data not in ("in_bag", "out_of_bag"):
        raise ValueError(f"variance_data must be 'in_bag' or 'out_of_bag', got {variance_data!r}")
    oob = variance_data == "out_of_bag"
    n_out = n_outputs(config["outputs"])

    def inputs(spec_store, key):
        if key is None or aug is None:
            spec = jax.vmap(lambda s: F.interp(grid, store, s))(spec_store)
        else:
            keys = jax.random.split(key, spec_store.shape[0])
            spec = jax.vmap(lambda s, k: F.augment(store, s, grid, aug, key=k))(spec_store, keys)
        return jax.vmap(feats)(spec)

    def loss_fn(params, batch, key):
        spec, fft = inputs(batch["spec"], key)
        pred = jax.vmap(lambda p: jax.vmap(lambda s, f: module.apply({"params": p}, s, f))(spec, fft))(params)
        if het:
            pred, sig = pred[..., :n_out], pred[..., n_out:]
        z = (pred - batch["y"][None]) / y_std  # [M, B, O] standardised error
        w = batch["w"].T  # [M, B]
        if nll and oob:
            # means: squared error on the member's bootstrap sample; variances: NLL of the (fixed) errors on
            # the entries it did not draw, i.e. errors on unseen groups, the ones a user will meet
            mse = jnp.sum(lw * batch["ymask"][None] * z**2, axis=-1)
            nll_v = gaussian_nll(jax.lax.stop_gradient(z), 0.0, sig / y_std, beta=beta)
            nll_v = jnp.sum(lw * batch["ymask"][None] * nll_v, axis=-1)
            o = batch["oob"].T
            member = (jnp.sum(w * mse, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1e-6)
                      + jnp.sum(o * nll_v, axis=1) / jnp.maximum(jnp.sum(o, axis=1), 1e-6))
        else:
            per_out = gaussian_nll(z, 0.0, sig / y_std, beta=beta) if nll else z**2
            per = jnp.sum(lw * batch["ymask"][None] * per_out, axis=-1)  # [M, B]
            member = jnp.sum(w * per, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1e-6)
        err = jnp.abs(jnp.mean(pred, axis=0) - batch["y"])  # ensemble-mean error [B, O]
        aux = {"r1_mae": jnp.mean(err[:, sl["r1"]]), "cn_mae": jnp.mean(err[:, sl["cn"]])}
        return jnp.mean(member), aux

    return loss_fn


def _fit_stages(config, store_energy, augment, train_data, val_data, tc, warmup: int, *, init, key,
                checkpoint_dir=None):
    """:func:`jxas.train.fit` once, or for mean-variance members an MSE warm-up then the NLL stage.

    The NLL stage starts from the warm-up's best (validation) parameters with a fresh optimiser; the
    histories are concatenated (``stage`` in the history says which epoch belonged to which).
    """
    from jxas.train import fit

    het = bool(config.get("heteroscedastic", False))
    if not het or warmup <= 0:
        loss = make_loss(config, store_energy, augment, stage="nll")
        return fit(init, loss, train_data, val_data, tc, key=key, checkpoint_dir=checkpoint_dir)
    if warmup >= tc.epochs:
        raise ValueError(f"mse_warmup_epochs ({warmup}) must be below the total epochs ({tc.epochs})")
    k1, k2 = jax.random.split(key)
    ck = (lambda sub: None) if checkpoint_dir is None else (lambda sub: f"{checkpoint_dir}/{sub}")
    log = (lambda sub: None) if tc.log_dir is None else (lambda sub: f"{tc.log_dir}/{sub}")
    tc1 = dataclasses.replace(tc, epochs=warmup, patience=None, log_dir=log("mse"))
    r1 = fit(init, make_loss(config, store_energy, augment, stage="mse"), train_data, val_data, tc1, key=k1,
             checkpoint_dir=ck("mse"))
    tc2 = dataclasses.replace(tc, epochs=tc.epochs - warmup, log_dir=log("nll"))
    r2 = fit(lambda _: r1.params, make_loss(config, store_energy, augment, stage="nll"), train_data, val_data,
             tc2, key=k2, checkpoint_dir=ck("nll"))
    hist = {k: list(r1.history.get(k, [])) + list(r2.history.get(k, [])) for k in r2.history}
    hist["stage"] = [0.0] * r1.epochs_run + [1.0] * r2.epochs_run
    return dataclasses.replace(r2, history=hist, best_epoch=r1.epochs_run + r2.best_epoch,
                               epochs_run=r1.epochs_run + r2.epochs_run)


def bootstrap_weights(groups, members: int, *, key: jax.Array) -> np.ndarray:
    """``[N, M]`` multiplicity of each training entry in each member's group bootstrap resample.

    The draw of :func:`train_inverse` (its key is the first of ``jax.random.split(key, 3)``); 0 marks
    the entries a member never saw (out of bag).
    """
    from jxas.train import bootstrap_indices

    w = np.zeros((len(groups), members), np.float32)
    for m, (in_bag, _) in enumerate(bootstrap_indices(groups, members, key=key)):
        w[:, m] = np.bincount(in_bag, minlength=len(groups))
    return w


def attach_error_model(model: InverseModel, data: InverseData, train_idx, val_idx, weights: np.ndarray, *,
                       k: int = 5, blocks=None) -> InverseModel:
    """Add the out-of-bag k-NN error model (:mod:`jxas.inverse.errmodel`) and recalibrate on validation.

    Args:
        model: a trained ensemble (its ``sigma_scale`` is refitted, everything else kept).
        data: the arrays it was trained from; ``train_idx``/``val_idx`` its training/validation entries.
        weights: ``[len(train_idx), M]`` its bootstrap multiplicities (:func:`bootstrap_weights`).
        k: neighbours.
        blocks: output blocks (names in ``config["outputs"]``, e.g. ``("g2",)``) whose variance the error
            model increases; the others keep the ensemble variance alone. Default: every output.

    Returns:
        A new :class:`InverseModel` with ``errmodel`` set and ``config["error_model"]`` describing it.
    """
    config = dict(model.config)
    o = n_outputs(config["outputs"])
    grid = np.asarray(config["energy"])
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    tr, va = np.asarray(train_idx), np.asarray(val_idx)
    p_tr = ensemble_predict(config, model.params, on_grid[tr])[..., :o]
    em = ErrorModel.fit(on_grid[tr], p_tr, data.y[tr], weights, k=k)
    if blocks is not None:
        sl = output_slices(config["outputs"])
        unknown = set(blocks) - set(sl)
        if unknown:
            raise ValueError(f"unknown output blocks {sorted(unknown)}; the model has {list(sl)}")
        keep = np.zeros(o, bool)
        for b in blocks:
            keep[sl[b]] = True
        em.err2[:, ~keep] = 0.0
    pv = ensemble_predict(config, model.params, on_grid[va])
    mv, sv = combine(pv, config, em(on_grid[va]))
    scale = fit_scale(data.y[va], mv, np.maximum(sv, 1e-6), method="coverage", axis=0)
    scale = np.where(data.ymask[va].sum(0) >= 3, scale, 1.0)
    config["sigma_scale"] = np.maximum(scale, 1e-3).tolist()
    config["error_model"] = {"kind": "oob_knn", "k": int(k), "n_library": int(len(em.library)),
                             "blocks": None if blocks is None else list(blocks)}
    return dataclasses.replace(model, config=config, errmodel=em)


def attach_error_net(model: InverseModel, data: InverseData, train_idx, val_idx, weights: np.ndarray, *,
                     key: jax.Array, k: int = 5, **mlp_kw) -> InverseModel:
    """Add the learned error model (:mod:`jxas.inverse.errnet`) and recalibrate the sigma scale on validation.

    It replaces a k-NN error model the model may have (whose signal is one of its features). Arguments as
    :func:`attach_error_model`; ``key`` seeds the error networks, ``mlp_kw`` goes to
    :func:`jxas.inverse.errnet.fit_mlp`.
    """
    config = dict(model.config)
    grid = np.asarray(config["energy"])
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    tr, va = np.asarray(train_idx), np.asarray(val_idx)
    p_tr = ensemble_predict(config, model.params, on_grid[tr])
    net = ErrorNet.fit(config, on_grid[tr], p_tr, data.y[tr], weights, data.groups[tr], key=key, k=k, **mlp_kw)
    pv = ensemble_predict(config, model.params, on_grid[va])
    mv, sv = combine(pv, config, net(on_grid[va], pv))
    scale = fit_scale(data.y[va], mv, np.maximum(sv, 1e-6), method="coverage", axis=0)
    scale = np.where(data.ymask[va].sum(0) >= 3, scale, 1.0)
    config["sigma_scale"] = np.maximum(scale, 1e-3).tolist()
    config["error_model"] = {"kind": "oob_mlp", "k": int(k), "n_library": int(len(net.library)),
                             "n_nets": int(net.params["w1"].shape[0]), "n_features": int(len(net.x_mean)),
                             "blocks": ["g2"]}
    return dataclasses.replace(model, config=config, errmodel=None, errnet=net)


def ensemble_predict(config: dict, params, spec_grid: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Member predictions ``[N, M, O]`` for spectra already on the model grid ``[N, E]`` (no augmentation)."""
    module = make_module(config)
    feats = _features_fn(config)

    @jax.jit
    def run(p, x):
        spec, fft = jax.vmap(feats)(x)
        return jax.vmap(lambda s, f: jax.vmap(lambda q: module.apply({"params": q}, s, f))(p))(spec, fft)

    out = []
    for a in range(0, len(spec_grid), batch_size):
        x = jnp.asarray(spec_grid[a : a + batch_size], jnp.float32)
        n = x.shape[0]
        if n < batch_size and len(spec_grid) > batch_size:  # keep one compiled shape
            x = jnp.concatenate([x, jnp.repeat(x[-1:], batch_size - n, axis=0)])
        out.append(np.asarray(run(params, x))[:n])
    return np.concatenate(out)


def train_inverse(
    data: InverseData,
    config: dict,
    *,
    key: jax.Array,
    members: int = 15,
    split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    train_config=None,
    augment: F.AugmentConfig | None = F.AugmentConfig(),  # noqa: B008  (frozen, immutable)
    seed: int = 0,
    name: str = "inverse",
    element: str = "",
    edge: str = "K",
    checkpoint_dir=None,
    mse_warmup_epochs: int = 0,
    error_model_k: int | None = None,
    error_model_blocks=None,
) -> tuple[InverseModel, dict]:
    """Train a bootstrap ensemble inverse model and calibrate its sigma on the validation split.

    Args:
        data: from :func:`prepare`.
        config: network configuration: ``arch`` ("cnn" or "cnn_fft"), ``energy`` (model grid, eV),
            optionally ``channels``, ``kernel``, ``stride``, ``dense``, ``n_fft``.
        key: PRNG key (initialisation, bootstrap, shuffling, augmentation).
        members: ensemble size M.
        split: ``(train, val, test)`` entry indices; default a 70/15/15 split by group with ``seed``.
        train_config: a :class:`jxas.train.TrainConfig` (default: Adam-like, lr 2e-3, batch 32, 50 epochs).
        augment: augmentation ranges, None for none.
        name, element, edge: stored in the model.
        checkpoint_dir: passed to :func:`jxas.train.fit` (resumable training).
        mse_warmup_epochs: for mean-variance members (``config["heteroscedastic"]``), epochs of
            squared-error training of the means before the NLL stage (part of ``train_config.epochs``).
        error_model_k: if set, add the out-of-bag k-NN error model with this many neighbours
            (:func:`attach_error_model`, restricted to ``error_model_blocks`` if given) before the sigma
            scale is fitted on validation.

    Returns:
        ``(model, report)``: the calibrated :class:`InverseModel` and a dict of validation/test metrics.
    """
    from jxas.train import TrainConfig, check_disjoint, group_split

    if split is None:
        split = tuple(group_split(data.groups, (0.70, 0.15, 0.15), seed=seed))
    tr, va, te = (np.asarray(s) for s in split)
    check_disjoint(data.groups, tr, va, te)
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"empty training ({len(tr)}) or validation ({len(va)}) split")
    tc = train_config or TrainConfig(epochs=50, batch_size=32, learning_rate=2e-3, weight_decay=0.0,
                                     warmup_epochs=1.0, clip_norm=None, patience=15, progress=False)
    y_tr = data.y[tr]
    m_tr = data.ymask[tr]
    mean = np.where(m_tr.sum(0) > 0, (y_tr * m_tr).sum(0) / np.maximum(m_tr.sum(0), 1), 0.0)
    var = np.where(m_tr.sum(0) > 0, (((y_tr - mean) ** 2) * m_tr).sum(0) / np.maximum(m_tr.sum(0), 1), 1.0)
    std = np.maximum(np.sqrt(var), 1e-2)  # G2 terms below 1 Å are ~0 in every structure
    config = dict(config)
    config.update(outputs=data.outputs, donors=data.donors, y_mean=mean.tolist(), y_std=std.tolist(),
                  n_members=members)
    config.setdefault("n_fft", 24)
    if config.get("heteroscedastic", False):
        config.update(mse_warmup_epochs=int(mse_warmup_epochs), nll_beta=float(config.get("nll_beta", 0.0)))
    config["energy"] = np.asarray(config["energy"], float).tolist()

    k_boot, k_init, k_fit = jax.random.split(key, 3)
    w = bootstrap_weights(data.groups[tr], members, key=k_boot)
    train_data = {"spec": data.spec[tr], "y": data.y[tr], "ymask": data.ymask[tr], "w": w}
    val_data = {"spec": data.spec[va], "y": data.y[va], "ymask": data.ymask[va],
                "w": np.ones((len(va), members), np.float32)}
    if config.get("variance_data") == "out_of_bag":
        train_data["oob"] = (w == 0).astype(np.float32)
        val_data["oob"] = np.ones((len(va), members), np.float32)
    module = make_module(config)
    n_fft = int(config["n_fft"])
    t0 = time.perf_counter()
    res = _fit_stages(config, data.store_energy, augment, train_data, val_data, tc, mse_warmup_epochs,
                      init=lambda k: init_members(module, members, len(config["energy"]), n_fft, key=k),
                      key=k_fit, checkpoint_dir=checkpoint_dir)
    train_s = time.perf_counter() - t0

    grid = np.asarray(config["energy"])
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    pv = ensemble_predict(config, res.params, on_grid[va])
    mv, sv = combine(pv, config)
    scale = fit_scale(data.y[va], mv, np.maximum(sv, 1e-6), method="coverage", axis=0)
    scale = np.where(data.ymask[va].sum(0) >= 3, scale, 1.0)  # outputs never labelled keep scale 1
    config["sigma_scale"] = np.maximum(scale, 1e-3).tolist()
    config["split_seed"] = seed
    # the groups the model has seen: a dataset that keeps growing changes a re-drawn split, these do not
    config["split_groups"] = {"train": sorted(set(map(str, data.groups[tr]))),
                              "val": sorted(set(map(str, data.groups[va])))}
    config["prototypes"] = prototypes(on_grid[tr], k=48, seed=seed).tolist()
    config["align_range"] = [-10.0, 10.0]
    config["kind"] = "inverse"
    config["has_ox"] = bool(data.ymask[tr][:, -1].sum() > 0)
    r1_tr = data.y[tr][:, output_slices(config["outputs"])["r1"]][:, 0]
    config["r1_range"] = [float(r1_tr.min()), float(r1_tr.max())]
    report = {"n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te)),
              "best_epoch": int(res.best_epoch), "epochs_run": int(res.epochs_run), "train_s": round(train_s, 1),
              "augment": None if augment is None else dataclasses.asdict(augment)}
    model = InverseModel(config=config, params=res.params, name=name, element=element, edge=edge)
    if error_model_k:
        model = attach_error_model(model, data, tr, va, w, k=int(error_model_k), blocks=error_model_blocks)
        config = model.config
    for part, idx in (("val", va), ("test", te)):
        if len(idx) == 0:
            continue
        p = pv if part == "val" else ensemble_predict(config, res.params, on_grid[idx])
        report[part] = evaluate_predictions(p, data.y[idx], data.ymask[idx], config,
                                            model.error_variance(on_grid[idx], p))
    report["history"] = {k: [float(x) for x in v] for k, v in res.history.items()}
    return model, report


def prototypes(spec: np.ndarray, k: int = 48, *, seed: int = 0, iters: int = 20) -> np.ndarray:
    """``k`` k-means centres (Lloyd's algorithm) of spectra ``[N, E]``: the library used for energy alignment."""
    rng = np.random.default_rng(seed)
    k = min(k, len(spec))
    c = spec[rng.choice(len(spec), k, replace=False)].astype(np.float64)
    for _ in range(iters):
        lab = np.argmin(((spec[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            if np.any(lab == j):
                c[j] = spec[lab == j].mean(0)
    return c.astype(np.float32)


def evaluate_predictions(pred: np.ndarray, y: np.ndarray, ymask: np.ndarray, config: dict,
                         err_var: np.ndarray | None = None) -> dict:
    """Metrics of member predictions ``[N, M, O]`` against targets ``[N, O]`` (calibrated sigma).

    ``err_var`` ``[N, O]``: the error model's variance of these spectra (models that have one).
    """
    sl = output_slices(config["outputs"])
    mean, raw_sigma = combine(pred, config, err_var)
    raw_sigma = np.maximum(raw_sigma, 1e-6)
    sigma = raw_sigma * np.asarray(config.get("sigma_scale", np.ones(y.shape[1])))
    out = {}
    r1 = sl["r1"]
    err_r1 = np.abs(mean[:, r1] - y[:, r1])[:, 0]
    out["r1_median_abs_err"] = float(np.median(err_r1))
    out["r1_mean_abs_err"] = float(np.mean(err_r1))
    out["r1_coverage_2sigma"] = float(np.mean(err_r1 <= 2 * sigma[:, r1][:, 0]))
    if len(err_r1) >= 3 and np.ptp(sigma[:, r1]) > 0:
        out["r1_pearson_sigma_sqerr"] = float(np.corrcoef(sigma[:, r1][:, 0], err_r1**2)[0, 1])
    cn = sl["cn"]
    out["cn_median_abs_err"] = float(np.median(np.abs(mean[:, cn] - y[:, cn])))
    out["cn_exact_fraction"] = float(np.mean(np.round(mean[:, cn]) == y[:, cn]))
    comp = sl["comp"]
    out["comp_exact_fraction"] = float(np.mean(np.all(np.round(mean[:, comp]) == y[:, comp], axis=1)))
    known = ymask[:, sl["ox"]][:, 0] > 0
    if known.any():
        ox = sl["ox"]
        out["ox_exact_fraction"] = float(np.mean(np.round(mean[known, ox][:, 0]) == y[known, ox][:, 0]))
    g = sl["g2"]
    cal = calibration_report(y[:, g], mean[:, g], sigma[:, g])
    out.update({f"g2_{k}": v for k, v in cal.items()})
    raw = calibration_report(y[:, g], mean[:, g], raw_sigma[:, g])
    out["g2_median_coverage_uncalibrated"] = raw["median_coverage"]
    out["g2_median_mse"] = float(np.median(((mean[:, g] - y[:, g]) ** 2).mean(1)))
    return out


_VARIANCE_DATA = {"in_bag": "each member's bootstrap sample", "out_of_bag": "each member's out-of-bag entries"}


def model_card(model: InverseModel, report: dict, *, dataset: str, command: str) -> str:
    """Markdown model card: data, split, architecture, metrics (validation and held-out test), retrain command."""
    c = model.config
    lines = [
        f"# {model.name}: {model.element} {model.edge}-edge inverse model (spectrum -> structure descriptors)",
        "",
        "## What it predicts",
        "From a normalised XANES spectrum on the absolute grid "
        f"{c['energy'][0]:.1f}-{c['energy'][-1]:.1f} eV ({len(c['energy'])} points): the 50 G2 wACSF terms of the "
        "absorber (r_min 0, r_max 6 Å, shifted grid), the mean first-shell distance (Å), the coordination number "
        "(non-H neighbours within 1.25 x the shortest distance), the first-shell composition per donor element "
        f"({', '.join(str(z) for z in c['donors'])} by atomic number, plus other)"
        + (", and the formal oxidation state." if c.get("has_ox") else " (no oxidation-state labels in the data)."),
        "Each value comes as the mean and the calibrated standard deviation of a "
        f"{c['n_members']}-member group-bootstrap ensemble"
        + (" of mean-variance networks (Gaussian NLL after "
           f"{c.get('mse_warmup_epochs', 0)} epochs of MSE warm-up, beta {c.get('nll_beta', 0.0)}, variance head "
           f"fitted on {_VARIANCE_DATA[c.get('variance_data', 'in_bag')]}; "
           "variance = mean member variance + variance of the member means, Lakshminarayanan et al. 2017)."
           if c.get("heteroscedastic") else "."),
    ]
    if (c.get("error_model") or {}).get("kind") == "oob_mlp":
        em = c["error_model"]
        lines.append(f"The G2 variance is increased by a learned error model (`jxas.inverse.errnet`): {em['n_nets']} "
                     f"small networks predict the spectrum's G2 MSE from {em['n_features']} features (ensemble spread, "
                     f"distance to the {em['n_library']} training spectra, predicted first shell, spectrum shape), "
                     "learnt from out-of-bag errors; the per-output scale is fitted on validation after it.")
    elif c.get("error_model"):
        em = c["error_model"]
        lines.append(f"The ensemble variance is increased by an out-of-bag error model (`jxas.inverse.errmodel`): the "
                     f"mean squared out-of-bag error of the {em['k']} nearest of {em['n_library']} training spectra, "
                     "per output"
                     + (f" of the blocks {', '.join(em['blocks'])}" if em.get("blocks") else "")
                     + "; the per-output scale is fitted on validation after it.")
    lines += [
        "",
        "## Data and split",
        f"- dataset: `{dataset}` ({report['n_train'] + report['n_val'] + report['n_test']} entries)",
        f"- split by group (material/complex), 70/15/15, seed {c.get('split_seed', 0)}: "
        f"train {report['n_train']}, validation {report['n_val']} (early stopping, sigma scale), "
        f"test {report['n_test']}",
        "",
        "## Architecture and training",
        f"- `{c.get('arch')}`: 1D CNN after David et al., Digital Discovery 2, 1461 (2023): convolutions "
        f"{list(c.get('channels', (16, 32, 32)))} (kernel {c.get('kernel', 8)}, stride {c.get('stride', 2)}), dense "
        f"{list(c.get('dense', (256, 128)))}"
        + (f", plus {c.get('n_fft', 24)} Fourier magnitudes of the post-edge oscillation" if c.get("arch") == "cnn_fft"
           else ""),
        f"- augmentation: {report.get('augment')}",
        f"- best epoch {report['best_epoch']} of {report['epochs_run']}, training time {report['train_s']} s "
        "(2 shared CPU cores)",
        "",
        "## Held-out metrics (test split; sigma scaled per output on the validation split)",
        "",
        "| metric | validation | test |",
        "|---|---|---|",
    ]
    for k in report.get("test", {}):
        v, t = report.get("val", {}).get(k, float("nan")), report["test"][k]
        lines.append(f"| {k} | {v:.4g} | {t:.4g} |")
    lines += ["", "## Retrain", "```bash", command, "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m jxas.inverse.train DATASET OUT_DIR [options]``: train, calibrate, save with a model card."""
    import argparse
    import json
    import shlex
    from pathlib import Path

    from jxas.data import Dataset
    from jxas.train import TrainConfig

    p = argparse.ArgumentParser(prog="python -m jxas.inverse.train", description=main.__doc__)
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--arch", default="cnn_fft", choices=["cnn", "cnn_fft"])
    p.add_argument("--grid", default=None, help="lo,hi,step of the model grid in eV (default: dataset range, 1 eV)")
    p.add_argument("--channels", default="16,32,32")
    p.add_argument("--members", type=int, default=15)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--patience", type=int, default=15)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--heteroscedastic", action="store_true",
                   help="mean-variance members trained with the Gaussian NLL (Lakshminarayanan et al. 2017)")
    p.add_argument("--nll-beta", type=float, default=0.0, help="beta-NLL exponent (0: plain Gaussian NLL)")
    p.add_argument("--variance-data", default="in_bag", choices=["in_bag", "out_of_bag"],
                   help="entries the variance head learns from (heteroscedastic): each member's bootstrap "
                   "sample, or the entries it did not draw")
    p.add_argument("--mse-warmup", type=int, default=0,
                   help="epochs of squared-error training of the means before the NLL stage (heteroscedastic)")
    p.add_argument("--error-model-k", type=int, default=None,
                   help="add the out-of-bag k-NN error model with this many neighbours (jxas.inverse.errmodel)")
    p.add_argument("--error-model-blocks", default=None,
                   help="comma-separated output blocks the error model applies to (e.g. g2; default all)")
    p.add_argument("--error-model-kind", default="knn", choices=["knn", "mlp"],
                   help="with --attach-error-model: the out-of-bag k-NN error model (jxas.inverse.errmodel) or the "
                   "learned one (jxas.inverse.errnet)")
    p.add_argument("--attach-error-model", default=None, metavar="MODEL",
                   help="do not train: add the error model (--error-model-k, default 5) to this trained model "
                   "(name or directory; DATASET must be the one it was trained on, --seed its seed) and save to OUT")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None)
    a = p.parse_args(argv)
    if a.attach_error_model:
        return _attach_main(a)

    ds = Dataset(a.dataset)
    if a.grid:
        lo, hi, step = (float(x) for x in a.grid.split(","))
    else:
        lo, hi, step = float(ds.energy[0]) + 2.0, float(ds.energy[-1]) - 2.0, 1.0
    grid = model_grid(lo, hi, step)
    data = prepare(ds, grid)
    tc = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr, weight_decay=0.0,
                     warmup_epochs=0.5, clip_norm=None, patience=a.patience, progress=True,
                     log_dir=str(Path(a.out) / "log"))
    name = a.name or Path(a.out).name
    cfg = {"arch": a.arch, "energy": grid, "channels": [int(c) for c in a.channels.split(",")],
           "heteroscedastic": bool(a.heteroscedastic)}
    if a.heteroscedastic:
        cfg.update(nll_beta=a.nll_beta, mse_warmup_epochs=a.mse_warmup, variance_data=a.variance_data)
    model, report = train_inverse(data, cfg, key=jax.random.key(a.seed), members=a.members, train_config=tc,
                                  augment=None if a.no_augment else F.AugmentConfig(), seed=a.seed, name=name,
                                  element=ds.element, edge=ds.edge, mse_warmup_epochs=a.mse_warmup,
                                  checkpoint_dir=str(Path(a.out) / "ckpt"), error_model_k=a.error_model_k,
                                  error_model_blocks=a.error_model_blocks.split(",") if a.error_model_blocks else None)
    model.config["dataset"] = Path(a.dataset).name
    model.config["metrics"] = {"val": report.get("val"), "test": report.get("test")}
    args = argv if argv is not None else __import__("sys").argv[1:]
    command = "python -m jxas.inverse.train " + " ".join(shlex.quote(x) for x in args)
    model.card = model_card(model, report, dataset=Path(a.dataset).name, command=command)
    model.save(a.out)
    (Path(a.out) / "log").mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "log" / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("val", "test") if k in report}, indent=1))
    return 0


def _attach_main(a) -> int:
    """``--attach-error-model``: the split and bootstrap of a trained model rebuilt, error model added."""
    import json
    from pathlib import Path

    from jxas.data import Dataset
    from jxas.inverse.invmodel import load_inverse_model
    from jxas.train import group_split

    model = load_inverse_model(a.attach_error_model)
    cfg = model.config
    ds = Dataset(a.dataset)
    data = prepare(ds, model.energy, donors=cfg["donors"])
    sg = cfg.get("split_groups")
    if sg:
        groups = np.asarray(data.groups).astype(str)
        tr, va = (np.flatnonzero(np.isin(groups, sg[part])) for part in ("train", "val"))
    else:
        tr, va, _ = group_split(data.groups, (0.70, 0.15, 0.15), seed=int(cfg.get("split_seed", a.seed)))
        cfg["split_groups"] = {"train": sorted(set(map(str, data.groups[tr]))),
                               "val": sorted(set(map(str, data.groups[va])))}
    w = bootstrap_weights(data.groups[tr], model.n_members, key=jax.random.split(jax.random.key(a.seed), 3)[0])
    x_va = _on_grid(data, model.energy)[va]
    p_va = ensemble_predict(cfg, model.params, x_va)
    before = evaluate_predictions(p_va, data.y[va], data.ymask[va], cfg, model.error_variance(x_va, p_va))
    blocks = a.error_model_blocks.split(",") if a.error_model_blocks else None
    if a.error_model_kind == "mlp":
        model = attach_error_net(model, data, tr, va, w, key=jax.random.key(a.seed), k=a.error_model_k or 5)
    else:
        model = attach_error_model(model, data, tr, va, w, k=a.error_model_k or 5, blocks=blocks)
    after = evaluate_predictions(p_va, data.y[va], data.ymask[va], model.config, model.error_variance(x_va, p_va))
    model.config.setdefault("metrics", {})["val_before_error_model"] = before
    model.config["metrics"]["val"] = after
    model.save(a.out)
    print(json.dumps({"val_before": before, "val_after": after}, indent=1))
    (Path(a.out) / "attach_report.json").write_text(json.dumps({"val_before": before, "val_after": after}, indent=1))
    return 0


def _on_grid(data: InverseData, grid) -> np.ndarray:
    return np.stack([np.interp(np.asarray(grid), data.store_energy, s) for s in data.spec]).astype(np.float32)


if __name__ == "__main__":
    raise SystemExit(main())
