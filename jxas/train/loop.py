"""A generic, resumable training loop: ``fit(init_fn, loss_fn, train, val, config, key=...)``.

Any model trains with it (forward models, inverse models, user prototypes): the loop only needs

- ``init_fn(key) -> params`` (a pytree),
- ``loss_fn(params, batch, key) -> (loss, aux)`` where ``batch`` is a slice of the data pytree and
  ``key`` a PRNG key for dropout/noise during training. Validation calls ``loss_fn(params, batch,
  None)``: ``key=None`` means deterministic evaluation (no dropout), so one function serves both.
- data: pytrees of arrays whose leaves share a leading entry axis.

Optimiser: gradient clipping by global norm, then AdamW (Loshchilov & Hutter, ICLR 2019) with a
linear warm-up followed by cosine decay (Loshchilov & Hutter, ICLR 2017) or reduce-on-plateau. The
learning rate is computed on the host for every step and injected (``optax.inject_hyperparams``), so
the whole training state is (params, optimiser state, epoch, counters) and every random draw derives
from ``key`` folded with the epoch and step numbers: a run resumed from a checkpoint repeats the
uninterrupted run exactly. Early stopping keeps the parameters of the best validation epoch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from jxas.train.checkpoint import latest_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "FitResult", "fit", "learning_rate_at", "n_entries"]

PyTree = Any


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit` (all plain values, JSON-serialisable with ``asdict``).

    Attributes:
        epochs: maximum number of passes over the training data.
        batch_size: entries per optimisation step (the last batch of an epoch is completed with
            entries from the start of the epoch's permutation, so every step has the same shape).
        learning_rate: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        warmup_epochs: linear warm-up length (epochs, may be fractional).
        schedule: "cosine" (decay to ``end_lr_fraction * learning_rate`` at ``epochs``), "plateau"
            (multiply by ``plateau_factor`` after ``plateau_patience`` epochs without validation
            improvement) or "constant".
        end_lr_fraction: final learning rate of the cosine schedule, relative to the peak.
        plateau_patience, plateau_factor: reduce-on-plateau settings.
        clip_norm: global gradient-norm clip (None: no clipping).
        patience: early stopping after this many epochs without validation improvement (None: never).
        min_delta: improvement smaller than this does not count.
        eval_batch_size: batch size for validation (default: ``batch_size``).
        checkpoint_every: epochs between checkpoints (when a checkpoint directory is given).
        log_dir: where ``history.csv`` (updated every epoch) and ``summary.json`` go (None: no files).
        progress: show a tqdm progress bar over epochs.
        n_devices: data-parallel devices (``batch_size`` must be divisible by it); 1 = no sharding.
    """

    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 2.0
    schedule: str = "cosine"
    end_lr_fraction: float = 0.01
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    clip_norm: float | None = 1.0
    patience: int | None = 30
    min_delta: float = 0.0
    eval_batch_size: int | None = None
    checkpoint_every: int = 1
    log_dir: str | None = None
    progress: bool = True
    n_devices: int = 1

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.schedule not in ("cosine", "plateau", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'plateau' or 'constant', got {self.schedule!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.n_devices < 1:
            raise ValueError(f"n_devices must be >= 1, got {self.n_devices}")


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        params: parameters of the best validation epoch (the last epoch when there is no validation).
        last_params: parameters after the last epoch run.
        history: per-epoch lists: ``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``time_s`` and the
            means of every scalar ``aux`` entry (``train_<name>``, ``val_<name>``).
        best_epoch: epoch (0-based) of ``params``.
        best_val: validation loss of ``params``.
        epochs_run: epochs completed in total (including those before a resume).
        stopped_early: True if early stopping ended the run.
        resumed_from: epoch count at which this call resumed from a checkpoint (None: fresh start).
        wall_s: wall time of this call (s).
    """

    params: PyTree
    last_params: PyTree
    history: dict[str, list[float]]
    best_epoch: int
    best_val: float
    epochs_run: int
    stopped_early: bool
    resumed_from: int | None
    wall_s: float


def n_entries(data: PyTree) -> int:
    """Length of the shared leading axis of a data pytree (ValueError if leaves disagree)."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data pytree has no array leaves")
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"every data leaf needs the same leading entry axis, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("data has no entries")
    return n


def learning_rate_at(step: int, steps_per_epoch: int, config: TrainConfig, scale: float = 1.0) -> float:
    """Learning rate of optimisation step ``step`` (warm-up, then the configured schedule) times ``scale``."""
    total = config.epochs * steps_per_epoch
    warm = max(int(round(config.warmup_epochs * steps_per_epoch)), 0)
    lr = config.learning_rate
    if step < warm:
        return lr * (step + 1) / warm * scale
    if config.schedule == "cosine":
        t = min((step - warm) / max(total - warm, 1), 1.0)
        end = config.end_lr_fraction
        lr = lr * (end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t)))
    return lr * scale


def _optimizer(config: TrainConfig) -> optax.GradientTransformation:
    return _optimizer_from(config.clip_norm, config.weight_decay, config.learning_rate)


def _optimizer_from(clip_norm, weight_decay, learning_rate) -> optax.GradientTransformation:
    adamw = optax.inject_hyperparams(optax.adamw)(learning_rate=learning_rate, weight_decay=weight_decay)
    if clip_norm is None:
        return optax.chain(optax.identity(), adamw)
    return optax.chain(optax.clip_by_global_norm(clip_norm), adamw)


_STEP_CACHE: dict = {}


def _steps(loss_fn, clip_norm, weight_decay, learning_rate):
    """Jitted train/eval steps, cached per loss function and optimiser settings (one compilation for
    all ensemble members, folds and resumed runs of the same model)."""
    cache_key = (loss_fn, clip_norm, weight_decay, learning_rate)
    if cache_key in _STEP_CACHE:
        return _STEP_CACHE[cache_key]
    tx = _optimizer_from(clip_norm, weight_decay, learning_rate)

    @jax.jit
    def train_step(params, opt_state, batch, key, lr):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, key)
        opt_state = _set_lr(opt_state, lr)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, _scalar_aux(aux)

    @jax.jit
    def eval_step(params, batch):
        loss, aux = loss_fn(params, batch, None)
        return loss, _scalar_aux(aux)

    if len(_STEP_CACHE) > 32:
        _STEP_CACHE.clear()
    _STEP_CACHE[cache_key] = (train_step, eval_step)
    return train_step, eval_step


def _set_lr(opt_state, lr):
    clip_state, inj = opt_state
    hp = dict(inj.hyperparams)
    hp["learning_rate"] = jnp.asarray(lr, dtype=jnp.asarray(hp["learning_rate"]).dtype)
    return (clip_state, inj._replace(hyperparams=hp))


def _scalar_aux(aux) -> dict[str, Any]:
    """Scalar entries of an aux dict (others are not averaged/logged)."""
    if not isinstance(aux, dict):
        return {}
    return {k: v for k, v in aux.items() if np.ndim(v) == 0}


def _take(data: PyTree, idx: np.ndarray) -> PyTree:
    return jax.tree.map(lambda x: x[idx], data)


class _Placer:
    """Puts batches on devices: sharded over a 1-D ``data`` mesh when ``n_devices > 1``."""

    def __init__(self, n_devices: int, batch_size: int):
        self.n = n_devices
        if n_devices > 1:
            from jxas.train.sharding import batch_sharding, replicated_sharding

            if batch_size % n_devices:
                raise ValueError(f"batch_size {batch_size} must be divisible by n_devices {n_devices}")
            self.batch = batch_sharding(n_devices)
            self.repl = replicated_sharding(n_devices)

    def params(self, tree):
        return tree if self.n == 1 else jax.device_put(tree, self.repl)

    def data(self, tree, size: int):
        if self.n == 1:
            return jax.tree.map(jnp.asarray, tree)
        return jax.device_put(tree, self.batch if size % self.n == 0 else self.repl)


def fit(
    init_fn: Callable[[jax.Array], PyTree],
    loss_fn: Callable[[PyTree, PyTree, jax.Array | None], tuple[jax.Array, Any]],
    train_data: PyTree,
    val_data: PyTree | None,
    config: TrainConfig,
    *,
    key: jax.Array,
    checkpoint_dir: str | os.PathLike | None = None,
) -> FitResult:
    """Train ``params = init_fn(key)`` by minimising ``loss_fn`` over ``train_data``.

    Args:
        init_fn: ``key -> params``.
        loss_fn: ``(params, batch, key) -> (scalar loss, aux)``; ``key`` is None for validation.
        train_data: pytree of arrays with a leading entry axis (NumPy or JAX).
        val_data: same structure for validation/early stopping, or None (then the training loss is
            tracked and no early stopping happens on held-out data).
        config: :class:`TrainConfig`.
        key: PRNG key; it fixes initialisation, shuffling and dropout (same key -> same run).
        checkpoint_dir: if given, the state is saved there every ``config.checkpoint_every`` epochs,
            and a call that finds a checkpoint there resumes from it (exactly; same arguments needed).

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: empty or inconsistent data, a non-finite training loss (with the epoch and step).
    """
    t_start = time.perf_counter()
    train_data = jax.tree.map(np.asarray, train_data)
    n_train = n_entries(train_data)
    if val_data is not None:
        val_data = jax.tree.map(np.asarray, val_data)
        n_val = n_entries(val_data)
    bs = min(config.batch_size, n_train)
    if config.n_devices > 1:
        bs = max(bs - bs % config.n_devices, config.n_devices)
    steps_per_epoch = math.ceil(n_train / bs)
    ebs = config.eval_batch_size or bs
    placer = _Placer(config.n_devices, bs)

    k_init, k_shuffle, k_drop = jax.random.split(key, 3)
    params = init_fn(k_init)
    tx = _optimizer(config)
    opt_state = tx.init(params)

    train_step, eval_step = _steps(loss_fn, config.clip_norm, config.weight_decay, config.learning_rate)

    def run_eval(params, data, n):
        tot, aux_tot = 0.0, {}
        for a in range(0, n, ebs):
            idx = np.arange(a, min(a + ebs, n))
            loss, aux = eval_step(params, placer.data(_take(data, idx), len(idx)))
            tot += float(loss) * len(idx)
            for k, v in aux.items():
                aux_tot[k] = aux_tot.get(k, 0.0) + float(v) * len(idx)
        return tot / n, {k: v / n for k, v in aux_tot.items()}

    # --- training state (everything a resume needs) ---
    state = {
        "params": params,
        "opt_state": opt_state,
        "best_params": params,
        "epoch": 0,
        "best_val": float("inf"),
        "best_epoch": -1,
        "bad": 0,
        "plateau_bad": 0,
        "plateau_scale": 1.0,
        "done": 0,
        "history": json.dumps({}),
    }
    resumed_from = None
    if checkpoint_dir is not None:
        ckpt = latest_checkpoint(checkpoint_dir)
        if ckpt is not None:
            from jxas.train.checkpoint import restore_checkpoint

            state = restore_checkpoint(ckpt, state)
            resumed_from = int(state["epoch"])
    history: dict[str, list[float]] = json.loads(state["history"])
    params = placer.params(jax.tree.map(jnp.asarray, state["params"]))
    opt_state = placer.params(jax.tree.map(jnp.asarray, state["opt_state"]))
    best_params = jax.tree.map(jnp.asarray, state["best_params"])
    best_val, best_epoch = float(state["best_val"]), int(state["best_epoch"])
    bad, plateau_bad, scale = int(state["bad"]), int(state["plateau_bad"]), float(state["plateau_scale"])
    epoch0 = int(state["epoch"])
    stopped = bool(state["done"]) and epoch0 < config.epochs

    bar = None
    if config.progress and not state["done"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, initial=epoch0, desc="train", unit="epoch", leave=False)

    epoch = epoch0
    while epoch < config.epochs and not state["done"]:
        t0 = time.perf_counter()
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_shuffle, epoch), n_train))
        perm = np.concatenate([perm, perm[: steps_per_epoch * bs - n_train]])
        k_epoch = jax.random.fold_in(k_drop, epoch)
        losses, aux_sum = [], {}
        for s in range(steps_per_epoch):
            idx = perm[s * bs : (s + 1) * bs]
            lr = learning_rate_at(epoch * steps_per_epoch + s, steps_per_epoch, config, scale)
            batch = placer.data(_take(train_data, idx), bs)
            params, opt_state, loss, aux = train_step(params, opt_state, batch, jax.random.fold_in(k_epoch, s), lr)
            loss = float(loss)
            if not math.isfinite(loss):
                raise ValueError(
                    f"non-finite training loss ({loss}) at epoch {epoch}, step {s}: lower the learning rate?"
                )
            losses.append(loss)
            for k, v in aux.items():
                aux_sum[k] = aux_sum.get(k, 0.0) + float(v)
        train_loss = float(np.mean(losses))
        if val_data is not None:
            val_loss, val_aux = run_eval(params, val_data, n_val)
        else:
            val_loss, val_aux = train_loss, {}
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
               "time_s": time.perf_counter() - t0}
        row.update({f"train_{k}": v / steps_per_epoch for k, v in aux_sum.items()})
        row.update({f"val_{k}": v for k, v in val_aux.items()})
        for k, v in row.items():
            history.setdefault(k, []).append(float(v))

        if val_loss < best_val - config.min_delta:
            best_val, best_epoch, best_params, bad, plateau_bad = val_loss, epoch, params, 0, 0
        else:
            bad += 1
            plateau_bad += 1
        if config.schedule == "plateau" and plateau_bad >= config.plateau_patience:
            scale *= config.plateau_factor
            plateau_bad = 0
        epoch += 1
        stopped = config.patience is not None and val_data is not None and bad >= config.patience
        done = stopped or epoch >= config.epochs
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}", best=best_epoch)
        if config.log_dir:
            _write_history(Path(config.log_dir), history)
        if checkpoint_dir is not None and (epoch % config.checkpoint_every == 0 or done):
            save_checkpoint(checkpoint_dir, epoch, {
                "params": params, "opt_state": opt_state, "best_params": best_params, "epoch": epoch,
                "best_val": best_val, "best_epoch": best_epoch, "bad": bad, "plateau_bad": plateau_bad,
                "plateau_scale": scale, "done": int(done), "history": json.dumps(history),
            })
        if stopped:
            break
    if bar is not None:
        bar.close()

    result = FitResult(
        params=jax.device_get(best_params),
        last_params=jax.device_get(params),
        history=history,
        best_epoch=best_epoch,
        best_val=best_val,
        epochs_run=epoch,
        stopped_early=stopped,
        resumed_from=resumed_from,
        wall_s=time.perf_counter() - t_start,
    )
    if config.log_dir:
        d = Path(config.log_dir)
        d.mkdir(parents=True, exist_ok=True)
        summary = {"best_epoch": best_epoch, "best_val": best_val, "epochs_run": epoch, "stopped_early": stopped,
                   "resumed_from": resumed_from, "wall_s": result.wall_s, "n_train": n_train,
                   "n_val": None if val_data is None else n_val, "config": dataclasses.asdict(config)}
        (d / "summary.json").write_text(json.dumps(summary, indent=2))
    return result


def _write_history(d: Path, history: dict[str, list[float]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    keys = list(history)
    tmp = d / "history.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for i in range(len(history["epoch"])):
            w.writerow([history[k][i] if i < len(history[k]) else "" for k in keys])
    os.replace(tmp, d / "history.csv")


def params_to_bytes(params: PyTree) -> bytes:
    """Serialise parameters with flax (helper for callers that save a result)."""
    return serialization.to_bytes(params)
