"""Training and evaluation of structure -> spectrum models on a ``jxas.data.Dataset``.

:func:`train_forward` splits a dataset by group (material/complex), standardises the output on the
training spectra, trains one network per ensemble member with :func:`jxas.train.fit` (different seeds,
optionally group-bootstrap resamples), stacks the members into a :class:`jxas.models.Model`,
evaluates it on the held-out test groups and writes the model directory (config, params, model card)
plus logs and plots. :func:`evaluate` computes the metrics of :mod:`jxas.train.metrics` for any model
on any dataset of the same element and edge.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jxas.train.loop import TrainConfig, fit
from jxas.train.metrics import spectrum_metrics
from jxas.train.splits import bootstrap_indices, check_disjoint, group_split

__all__ = ["train_forward", "evaluate", "select_split", "predict_dataset", "group_weights"]

TEST_LABELS = ("test", "val")  # source-provided labels used as the held-out test set, in order of preference


def select_split(dataset, *, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Train / validation / test entry indices of a dataset, by group.

    If the dataset carries source split labels (e.g. OmniXAS "train"/"val"), the entries labelled
    "test" (else "val") form the test set (OmniXAS keeps its own test materials out of the public
    data, so its val split is our test) and the rest is split by group into train and validation
    (early stopping) with the ratio of ``fractions[0]:fractions[1]``. Otherwise all groups are split
    with ``fractions``. Groups never straddle two parts (checked).

    Returns:
        ``{"train", "val", "test"}`` sorted index arrays, plus ``"source"`` describing the rule used.
    """
    groups = np.asarray(dataset.groups)
    splits = np.asarray(dataset.splits).astype(str)
    labels = set(splits.tolist())
    test_label = next((t for t in TEST_LABELS if t in labels), None)
    if test_label is not None:
        test = np.flatnonzero(splits == test_label)
        rest = np.flatnonzero(splits != test_label)
        # a group labelled test anywhere goes entirely to test
        test_groups = set(groups[test].tolist())
        moved = np.array([g in test_groups for g in groups[rest]], bool)
        test = np.sort(np.concatenate([test, rest[moved]]))
        rest = rest[~moved]
        tr, va = group_split(groups[rest], fractions[:2], seed=seed)
        out = {"train": rest[tr], "val": rest[va], "test": test}
        source = f"test = source split {test_label!r}; train/val by group (seed {seed})"
    else:
        tr, va, te = group_split(groups, fractions, seed=seed)
        out = {"train": tr, "val": va, "test": te}
        source = f"group split {tuple(fractions)} (seed {seed})"
    check_disjoint(groups, out["train"], out["val"], out["test"])
    out["source"] = source
    return out


def group_weights(groups, power: float) -> np.ndarray:
    """Per-entry weights ``n_g ** -power`` (``n_g``: entries of the entry's group), normalised to mean 1.

    ``power=1`` gives every group the same total weight; ``power=0`` every entry weight 1.
    """
    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    w = counts[inv].astype(np.float64) ** -float(power)
    return (w / w.mean()).astype(np.float32)


def _np_structures(dataset, idx):
    return jax.tree.map(np.asarray, dataset.structures(idx))


def trim_to_cutoff(structures, cutoff: float):
    """Drop atom slots no structure of the batch has within ``cutoff`` Å of its absorber (host side).

    Atoms inside the cutoff are moved first (stable order, absorber index updated) and the padding
    is cut to the largest count. Exact for models that see only the absorber's neighbours within the
    cutoff (wACSF, absorber RDC, a one-layer absorber-centred e3nn network); it makes training on
    7 Å crystal clusters several times cheaper.
    """
    pos, num, mask = (np.asarray(a) for a in (structures.positions, structures.numbers, structures.mask))
    ab = np.asarray(structures.absorber)
    rows = np.arange(len(pos))
    r = np.linalg.norm(pos - pos[rows, ab][:, None], axis=-1)
    inside = mask & (r < cutoff)
    order = np.argsort(~inside, axis=1, kind="stable")
    n = int(inside.sum(1).max())
    take = order[:, :n]
    new_ab = np.argmax(take == ab[:, None], axis=1)
    return dataclasses.replace(
        structures,
        positions=np.take_along_axis(pos, take[..., None], 1),
        numbers=np.take_along_axis(num, take, 1),
        mask=np.take_along_axis(inside, take, 1),
        absorber=new_ab.astype(np.asarray(structures.absorber).dtype),
        charge=np.asarray(structures.charge),
        spin=np.asarray(structures.spin),
    )


def _trim_is_exact(cfg: dict) -> bool:
    if cfg["kind"] == "mlp":
        return cfg.get("descriptor_args", {}).get("pairs", "absorber") != "all"
    return int(cfg.get("n_layers", 2)) == 1


def _stack_members(params_list):
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *params_list)


def _chunked(fn, structures, chunk: int = 256) -> np.ndarray:
    """``fn`` (jitted, batched) over a host-side Structure batch in fixed-size chunks (one compilation)."""
    n = int(np.shape(structures.numbers)[0])
    out = []
    for a in range(0, n, chunk):
        part = jax.tree.map(lambda x, a=a: np.asarray(x)[a : a + chunk], structures)
        k = int(part.numbers.shape[0])
        if k < chunk and n > chunk:
            part = jax.tree.map(lambda x, k=k: np.concatenate([x, np.repeat(x[-1:], chunk - k, 0)]), part)
        out.append(np.asarray(fn(part))[:k])
    return np.concatenate(out)


def train_forward(
    dataset,
    model_config: dict,
    train_config: TrainConfig,
    *,
    members: int = 1,
    key: jax.Array,
    out_dir: str | os.PathLike,
    bootstrap: bool = False,
    split_seed: int = 0,
    fractions=(0.8, 0.1, 0.1),
    name: str | None = None,
    max_train: int | None = None,
    command: str | None = None,
    split: dict | None = None,
    group_weight: float = 0.0,
    param_dtype: str = "float32",
    loss=None,
    select: str = "best",
):
    """Train a structure -> spectrum model (an ensemble of ``members`` networks) on ``dataset``.

    Descriptor MLPs are trained on descriptors computed once (the descriptor has no parameters; the
    network's ``features`` method is intercepted with the cached values, checked against the
    uncached network before training), so an epoch costs only the dense layers.

    Args:
        dataset: a :class:`jxas.data.Dataset` (or a path to one).
        model_config: ``{"kind": "mlp" | "e3nn", **hyper-parameters}`` (see
            :data:`jxas.models.DEFAULTS`); grid, element, statistics and trained elements are filled in.
        train_config: optimiser/early-stopping settings (:class:`TrainConfig`).
        members: ensemble size; member ``m`` uses ``jax.random.fold_in(key, m)``.
        key: PRNG key (initialisation, shuffling, dropout, bootstrap draws).
        out_dir: run directory: ``model/`` (the saved model), ``member_<m>/`` (logs, checkpoints:
            rerunning the same call resumes), ``split.json``, ``metrics.json``, plots.
        bootstrap: train member m on a group-bootstrap resample of the training groups.
        split_seed, fractions: see :func:`select_split`.
        name: model name (default ``<element>-<edge>`` in lower case).
        max_train: use at most this many training entries (whole groups; quick experiments/tests).
        command: the command line that reproduces this run, recorded in the model card.
        split: explicit ``{"train", "val", "test"}`` entry indices (e.g. one cross-validation fold;
            ``"test"`` may be empty, then no test metrics are computed); replaces :func:`select_split`.
            Groups must not straddle parts (checked).
        group_weight: weight each entry's squared error by ``n_g ** -group_weight``, with ``n_g`` the
            number of entries of its group in its part (train or validation), normalised to mean 1:
            0 = every site counts the same; 1 = every material counts the same (its sites share one
            unit of weight), which matches a test set of mostly one-site materials (OmniXAS's val
            materials) better than site weighting. Applied to the early-stopping validation loss too.
        param_dtype: "float32" or "float16": the stored precision of the parameters. Float16 halves
            the model file (a larger ensemble fits the package budget); the held-out metrics are
            computed with the rounded parameters, i.e. those of the saved model.
        loss: optional shape-aware loss terms (:class:`jxas.train.losses.SpectrumLoss` or a dict of
            its fields: near-edge weight, derivative term, softmax peak-location term); None = the
            per-spectrum MSE. Used for training and for the validation loss of early stopping.
        select: "best" keeps the parameters of the best validation epoch; "last" those of the last
            epoch (a fixed schedule; then the validation split may be empty, e.g. training on
            train + validation, and no validation metrics are computed).

    Returns:
        The trained :class:`jxas.models.Model` (also saved in ``out_dir/model``).
    """
    import flax.linen as nn
    from ase.data import atomic_numbers

    from jxas.data import Dataset
    from jxas.models import Model, default_config, make_module, model_cutoff, with_statistics

    t0 = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if len(ds) == 0:
        raise ValueError(f"{ds.path}: dataset is empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = np.asarray(ds.groups)
    if split is None:
        split = select_split(ds, seed=split_seed, fractions=fractions)
    else:
        split = {k: np.sort(np.asarray(split.get(k, []), int)) for k in ("train", "val", "test")} | {
            "source": split.get("source", "explicit split")}
        check_disjoint(groups, split["train"], split["val"], split["test"])
    if param_dtype not in ("float32", "float16"):
        raise ValueError(f"param_dtype must be 'float32' or 'float16', got {param_dtype!r}")
    if max_train is not None and len(split["train"]) > max_train:
        sizes = dict(zip(*np.unique(groups[split["train"]], return_counts=True), strict=True))
        keep, count = set(), 0
        for g in np.random.default_rng(split_seed).permutation(sorted(sizes)):
            if count >= max_train:
                break
            keep.add(g)
            count += sizes[g]
        split["train"] = np.array([i for i in split["train"] if groups[i] in keep], int)
    if select not in ("best", "last"):
        raise ValueError(f"select must be 'best' or 'last', got {select!r}")
    if len(split["train"]) == 0 or (len(split["val"]) == 0 and select == "best"):
        raise ValueError(f"{ds.path}: too few groups to split ({len(np.unique(groups))} groups)")
    (out / "split.json").write_text(json.dumps({
        "rule": split["source"],
        **{k: {"n": len(split[k]), "groups": sorted(set(groups[split[k]].tolist()))} for k in ("train", "val", "test")},
    }, indent=1))

    hyper = {k: v for k, v in model_config.items() if k != "kind"}
    energy = np.asarray(ds.energy, float)
    cfg = default_config(model_config.get("kind", "mlp"), ds.element, ds.edge, energy=energy, **hyper)
    cutoff = model_cutoff(cfg)
    has_val = len(split["val"]) > 0
    # without validation entries the code paths below run on a one-entry stand-in that fit() never sees
    val_idx = split["val"] if has_val else split["train"][:1]
    s_train = _np_structures(ds, split["train"])
    s_val = _np_structures(ds, val_idx)
    if _trim_is_exact(cfg):
        s_train, s_val = trim_to_cutoff(s_train, cutoff), trim_to_cutoff(s_val, cutoff)
    mu_train = np.asarray(ds.spectra(split["train"]), np.float32)
    mu_val = np.asarray(ds.spectra(val_idx), np.float32)
    cached = cfg["kind"] == "mlp"
    if cached:
        # descriptors once (the MLP's `features` has no parameters): statistics and training inputs
        # come from the same pass instead of with_statistics recomputing them
        from jxas.models.config import training_domain
        from jxas.models.mlp import descriptor_fn

        # built outside any trace: an lru-cached factory first built inside jit caches tracers
        raw = jax.jit(jax.vmap(descriptor_fn(cfg["descriptor"], cfg.get("descriptor_args", {}))))
        x_tr, x_va = _chunked(raw, s_train), _chunked(raw, s_val)
        if not (np.all(np.isfinite(x_tr)) and np.all(np.isfinite(x_va))):
            raise ValueError(f"{ds.path}: descriptors contain NaN/inf (overlapping atoms?)")
        dom = training_domain(jax.tree.map(jnp.asarray, s_train), cutoff)
        cfg.update(
            mu_mean=[float(v) for v in mu_train.astype(np.float64).mean(0)],
            mu_std=[float(v) for v in mu_train.astype(np.float64).std(0)],
            elements=sorted(set(dom["elements"]) | {atomic_numbers[ds.element]}),
            domain=dom, cutoff=cutoff,
            x_mean=[float(v) for v in x_tr.mean(0)],
            x_std=[float(v) for v in np.maximum(x_tr.std(0), 1e-6)],
        )
        module = make_module(cfg)

        def standardise(x, s):
            z = (x - np.asarray(cfg["x_mean"])) / np.maximum(np.asarray(cfg["x_std"]), 1e-8)
            if cfg.get("use_charge_spin"):
                z = np.concatenate([z, np.stack([np.asarray(s.charge), np.asarray(s.spin)], 1)], 1)
            return z.astype(np.float32)

        train_data = {"x": standardise(x_tr, s_train), "mu": mu_train}
        val_data = {"x": standardise(x_va, s_val), "mu": mu_val}
    else:
        cfg = with_statistics(cfg, jax.tree.map(jnp.asarray, s_train), mu_train)
        module = make_module(cfg)
        train_data = {"structure": s_train, "mu": mu_train}
        val_data = {"structure": s_val, "mu": mu_val}
    if group_weight:
        train_data["w"] = group_weights(groups[split["train"]], group_weight)
        val_data["w"] = group_weights(groups[val_idx], group_weight)
    s0 = jax.tree.map(lambda x: jnp.asarray(x[0]), s_train)

    def init_fn(k):
        return module.init({"params": k}, s0, train=False)["params"]

    def apply_one(params, inp, train, rng):
        rngs = {"dropout": rng} if train else {}
        if not cached:
            return module.apply({"params": params}, inp, train=train, rngs=rngs)

        def use_cached(next_fun, args, kwargs, context):
            return inp if context.method_name == "features" else next_fun(*args, **kwargs)

        with nn.intercept_methods(use_cached):
            return module.apply({"params": params}, s0, train=train, rngs=rngs)

    def predict(params, inputs, key):
        n = jax.tree.leaves(inputs)[0].shape[0]
        if key is None:
            return jax.vmap(lambda i: apply_one(params, i, False, None))(inputs)
        return jax.vmap(lambda i, k: apply_one(params, i, True, k))(inputs, jax.random.split(key, n))

    from jxas.train.losses import SpectrumLoss, make_spectrum_loss

    loss_opts = loss if isinstance(loss, SpectrumLoss) else SpectrumLoss(**(loss or {}))
    spectrum_loss = jax.vmap(make_spectrum_loss(energy, loss_opts))

    def loss_fn(params, batch, key):
        inputs = batch["x"] if cached else batch["structure"]
        pred = predict(params, inputs, key)
        mse = jnp.mean((pred - batch["mu"]) ** 2, axis=-1)
        per = mse if loss_opts.is_mse else spectrum_loss(pred, batch["mu"])
        loss = jnp.mean(per * batch["w"]) if "w" in batch else jnp.mean(per)
        return loss, {"median_mse": jnp.median(mse)}

    if cached:  # the cache must reproduce the network on structures exactly (up to float32 rounding)
        p0 = init_fn(jax.random.key(0))
        k = min(4, len(val_data["mu"]))
        a = predict(p0, jnp.asarray(val_data["x"][:k]), None)
        b = jax.vmap(lambda s: module.apply({"params": p0}, s))(jax.tree.map(lambda x: jnp.asarray(x[:k]), s_val))
        if not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5):
            raise RuntimeError("cached descriptors do not reproduce the network's own features")

    boot = None
    if bootstrap:
        boot = bootstrap_indices(groups[split["train"]], members, key=jax.random.fold_in(key, 10_000))
    member_params, histories, fits = [], [], []
    for m in range(members):
        mdir = out / f"member_{m}"
        tc = dataclasses.replace(train_config, log_dir=str(mdir))
        data_m = train_data if boot is None else jax.tree.map(lambda x, b=boot[m][0]: x[b], train_data)
        res = fit(init_fn, loss_fn, data_m, val_data if has_val else None, tc, key=jax.random.fold_in(key, m),
                  checkpoint_dir=mdir / "ckpt")
        member_params.append(res.params if select == "best" else res.last_params)
        histories.append(res.history)
        fits.append({"member": m, "best_epoch": res.best_epoch, "best_val_mse": res.best_val,
                     "epochs_run": res.epochs_run, "stopped_early": res.stopped_early, "wall_s": res.wall_s})
    train_wall = time.perf_counter() - t0
    if param_dtype == "float16":
        # evaluate exactly what is saved: the rounded parameters
        member_params = [jax.tree.map(lambda x: np.asarray(x, np.float16).astype(np.float32), p)
                         for p in member_params]
        cfg["param_dtype"] = "float16"

    cfg["test_groups"] = sorted(set(groups[split["test"]].tolist()))
    cfg["training"] = {
        "dataset": ds.path.name, "recipe": ds.recipe.get("name") if isinstance(ds.recipe, dict) else None,
        "split_rule": split["source"], "n_train": len(split["train"]), "n_val": len(split["val"]),
        "n_test": len(split["test"]), "members": members, "bootstrap": bootstrap,
        "train_config": dataclasses.asdict(train_config), "group_weight": group_weight,
        "param_dtype": param_dtype, "loss": dataclasses.asdict(loss_opts), "select": select,
        "members_fit": fits, "wall_s": train_wall,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, jax {jax.__version__} {jax.devices()[0].platform}",
        "command": command,
        "load_average_1min": os.getloadavg()[0],
    }
    model = Model(config=cfg, params=_stack_members(member_params), name=name or f"{ds.element}-{ds.edge}".lower())
    metrics = {}
    mean = np.asarray(cfg["mu_mean"])
    if len(split["test"]):
        metrics["test"] = evaluate(model, ds, split["test"], train_mean=mean, plot_dir=out)
    if has_val:
        metrics["val"] = evaluate(model, ds, split["val"], train_mean=mean)
    cfg["metrics"] = metrics
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    from jxas.train.plots import plot_learning_curves

    plot_learning_curves(histories, out / "learning_curves.png", title=f"{model.name}: {members} member(s)")
    model = model.replace(config=cfg)
    model = model.replace(card=model_card(model, cfg))
    model.save(out / "model")
    return model


def predict_dataset(model, dataset, idx=None, *, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and spread ``([B, E], [B, E])`` of ``model`` over dataset entries ``idx``."""
    idx = np.arange(len(dataset)) if idx is None else np.asarray(idx, int)
    fn = jax.jit(jax.vmap(lambda s: model.apply_members(model.params, s)))
    means, stds = [], []
    for a in range(0, len(idx), chunk):
        sel = idx[a : a + chunk]
        s = dataset.structures(sel)
        n = len(sel)
        if n < chunk and len(idx) > chunk:  # keep one compiled shape: pad the last chunk
            s = jax.tree.map(lambda x, k=chunk - n: jnp.concatenate([x, jnp.repeat(x[-1:], k, 0)]), s)
        mu = np.asarray(fn(s))[:n]  # [n, M, E]
        means.append(mu.mean(1))
        stds.append(mu.std(1))
    return np.concatenate(means), np.concatenate(stds)


def evaluate(model, dataset, idx=None, *, train_mean=None, plot_dir=None, window: float = 35.0) -> dict[str, Any]:
    """Accuracy of ``model`` on dataset entries ``idx`` (default: the model's test split, else all).

    Args:
        model: a :class:`jxas.models.Model` (or anything with ``apply_members``, ``params``, ``energy``).
        dataset: a :class:`jxas.data.Dataset` (or path) of the same element and edge.
        idx: entry indices; None uses the model's recorded test groups when the dataset is the one it
            was trained on, otherwise every entry.
        train_mean: ``[E]`` training-set mean spectrum for eta (default: the model's ``mu_mean``).
        plot_dir: if given, write ``spectra_percentiles.png`` and ``peak_parity.png`` there.
        window: near-edge window width (eV).

    Returns:
        The :func:`jxas.train.metrics.spectrum_metrics` dict, plus ``mean_ensemble_std`` and
        ``predict_s`` (wall time of the prediction).

    Raises:
        ValueError: element/edge or energy grid of the dataset differ from the model's.
    """
    from jxas.data import Dataset

    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if (ds.element.lower(), ds.edge.upper()) != (model.element.lower(), model.edge.upper()):
        raise ValueError(
            f"{ds.path}: dataset is {ds.element} {ds.edge}, the model predicts {model.element} {model.edge}"
        )
    if ds.energy.shape != np.shape(model.energy) or not np.allclose(ds.energy, model.energy, atol=1e-6):
        raise ValueError(f"{ds.path}: energy grid differs from the model's ({ds.energy.size} vs "
                         f"{np.size(model.energy)} points); interpolate the dataset first")
    if idx is None:
        idx = _default_eval_idx(model, ds)
    idx = np.asarray(idx, int)
    if idx.size == 0:
        raise ValueError(f"{ds.path}: no entries to evaluate")
    if train_mean is None:
        train_mean = np.asarray(model.config.get("mu_mean"), float)
    t = time.perf_counter()
    pred, std = predict_dataset(model, ds, idx)
    dt = time.perf_counter() - t
    ref = np.asarray(ds.spectra(idx), float)
    out = spectrum_metrics(ds.energy, pred, ref, train_mean, window=window)
    out["mean_ensemble_std"] = float(np.mean(std))
    out["predict_s"] = dt
    if plot_dir is not None:
        from jxas.train.plots import plot_peak_parity, plot_percentile_spectra

        d = Path(plot_dir)
        d.mkdir(parents=True, exist_ok=True)
        labels = np.asarray(ds.keys)[idx]
        plot_percentile_spectra(ds.energy, pred, ref, d / "spectra_percentiles.png", std=std, labels=labels,
                                title=f"{model.name} on {ds.path.name} ({idx.size} spectra)")
        plot_peak_parity(ds.energy, pred, ref, d / "peak_parity.png")
    return out


def _default_eval_idx(model, ds) -> np.ndarray:
    """The model's recorded test groups if ``ds`` is the dataset it was trained on, else every entry."""
    tr = model.config.get("training", {})
    if tr.get("dataset") == ds.path.name and model.config.get("test_groups"):
        test_groups = set(model.config["test_groups"])
        idx = np.array([i for i, g in enumerate(ds.groups) if g in test_groups], int)
        if idx.size:
            return idx
    return np.arange(len(ds))


def model_card(model, cfg: dict) -> str:
    """Markdown model card: data, split, grid, architecture, held-out metrics, how to retrain."""
    tr = cfg.get("training", {})
    e = np.asarray(cfg["energy"])
    lines = [
        f"# {model.name}: {cfg['element']} {cfg['edge']}-edge structure -> XANES model",
        "",
        f"- **Architecture**: `{cfg.get('kind')}`; ensemble of {tr.get('members', 1)} member(s)"
        f"{' (group bootstrap)' if tr.get('bootstrap') else ' (different seeds)'}.",
        f"- **Output**: unconvolved mu on {e.size} points, {e[0]:.2f}-{e[-1]:.2f} eV (absolute), "
        "ensemble mean and standard deviation.",
        f"- **Trained on**: `{tr.get('dataset')}` (recipe {tr.get('recipe')}), elements "
        f"{', '.join(_symbol(z) for z in cfg.get('elements', []))}.",
        f"- **Split**: {tr.get('split_rule')}; {tr.get('n_train')} train / {tr.get('n_val')} validation / "
        f"{tr.get('n_test')} test entries (no material/complex in two parts).",
        f"- **Training**: {tr.get('wall_s', float('nan')) / 60:.1f} min on {tr.get('machine')} (1-min load "
        f"average {tr.get('load_average_1min', float('nan')):.1f} at the end: the machine was shared).",
        "",
        "## Held-out metrics (test split)",
        "",
    ]
    m = cfg.get("metrics", {}).get("test") or cfg.get("metrics", {}).get("val")
    if m:
        lines += [
            "| metric | full grid | 35 eV above the edge onset |",
            "|---|---|---|",
            f"| eta (median MSE of training mean / model) | {m['eta']:.2f} | {m['eta_edge']:.2f} |",
            f"| median MSE | {m['median_mse']:.3e} | {m['median_mse_edge']:.3e} |",
            f"| median Pearson r | {m['median_pearson']:.4f} | {m['median_pearson_edge']:.4f} |",
            f"| median peak-position error (eV) | {m['median_peak_de']:.2f} | {m['median_peak_de_edge']:.2f} |",
            f"| median peak-intensity error | {m['median_peak_dmu']:.3f} | {m['median_peak_dmu_edge']:.3f} |",
            "",
            f"{m['n']} test spectra.",
        ]
    lines += ["", "## Retrain", "", "```", tr.get("command") or "(command not recorded)", "```", ""]
    return "\n".join(lines)


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]
