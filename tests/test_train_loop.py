"""Generic training loop: it really learns, resumes exactly, stops early, logs, and rejects bad input."""

from __future__ import annotations

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jxas.train import TrainConfig, fit
from jxas.train.checkpoint import latest_checkpoint
from jxas.train.loop import learning_rate_at


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.tanh(nn.Dense(16)(x))
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(3)(x)


def _problem(n=96, seed=0):
    """A smooth nonlinear regression that a 16-unit MLP can learn: y = [sin x0, x1 x2, cos(x0 + x1)]."""
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (n, 3))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2], np.cos(x[:, 0] + x[:, 1])], axis=1)
    return {"x": x, "y": y}


@functools.cache
def _fns():
    net = _MLP()

    def init_fn(key):
        return net.init(key, jnp.zeros((1, 3)))["params"]

    def loss_fn(params, batch, key):
        train = key is not None
        pred = net.apply({"params": params}, batch["x"], train=train, rngs={"dropout": key} if train else {})
        loss = jnp.mean((pred - batch["y"]) ** 2)
        return loss, {"mae": jnp.mean(jnp.abs(pred - batch["y"]))}

    return init_fn, loss_fn


def _cfg(**kw):
    base = dict(epochs=12, batch_size=16, learning_rate=2e-2, warmup_epochs=1, patience=None, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_training_reduces_loss(tmp_path):
    init_fn, loss_fn = _fns()
    data = _problem()
    res = fit(init_fn, loss_fn, data, _problem(32, seed=1), _cfg(log_dir=str(tmp_path)), key=jax.random.key(0))
    h = res.history
    assert len(h["epoch"]) == 12 and res.epochs_run == 12
    # the untrained network's validation loss, measured independently of the loop
    p0 = init_fn(jax.random.split(jax.random.key(0), 3)[0])
    val0 = float(loss_fn(p0, jax.tree.map(jnp.asarray, _problem(32, seed=1)), None)[0])
    assert res.best_val < 0.2 * val0, (val0, res.best_val)
    assert h["val_loss"][res.best_epoch] == res.best_val
    assert min(h["val_loss"]) == res.best_val
    # logs: CSV with one row per epoch and a JSON summary
    lines = (tmp_path / "history.csv").read_text().strip().splitlines()
    assert len(lines) == 13 and "val_mae" in lines[0]
    assert json.loads((tmp_path / "summary.json").read_text())["best_epoch"] == res.best_epoch


def test_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    init_fn, loss_fn = _fns()
    data, val = _problem(), _problem(32, seed=1)
    key = jax.random.key(3)
    full = fit(init_fn, loss_fn, data, val, _cfg(), key=key)
    # interrupt a run of the same config right after its epoch-5 checkpoint is written
    import jxas.train.loop as loop

    class _Killed(Exception):
        pass

    orig = loop.save_checkpoint

    def save_then_die(d, epoch, state, **kw):
        out = orig(d, epoch, state, **kw)
        if epoch == 5:
            raise _Killed
        return out

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        fit(init_fn, loss_fn, data, val, _cfg(), key=key, checkpoint_dir=tmp_path)
    monkeypatch.setattr(loop, "save_checkpoint", orig)
    assert latest_checkpoint(tmp_path).name == "ckpt_000005.msgpack"
    resumed = fit(init_fn, loss_fn, data, val, _cfg(), key=key, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 5 and resumed.epochs_run == 12
    for a, b in zip(jax.tree.leaves(full.last_params), jax.tree.leaves(resumed.last_params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.history["val_loss"] == full.history["val_loss"]
    assert resumed.best_epoch == full.best_epoch
    # a finished run found in the directory is not trained again
    again = fit(init_fn, loss_fn, data, val, _cfg(), key=key, checkpoint_dir=tmp_path)
    assert again.resumed_from == 12 and again.history["val_loss"] == full.history["val_loss"]


def test_same_key_same_run_and_other_key_differs():
    init_fn, loss_fn = _fns()
    data = _problem(48)
    a = fit(init_fn, loss_fn, data, None, _cfg(epochs=3), key=jax.random.key(1))
    b = fit(init_fn, loss_fn, data, None, _cfg(epochs=3), key=jax.random.key(1))
    c = fit(init_fn, loss_fn, data, None, _cfg(epochs=3), key=jax.random.key(2))
    assert a.history["train_loss"] == b.history["train_loss"]
    assert a.history["train_loss"] != c.history["train_loss"]


def test_early_stopping_keeps_best_params():
    init_fn, loss_fn = _fns()
    data = _problem(48)
    # validation targets unrelated to the inputs: the network can only get worse on them
    val = _problem(32, seed=5)
    val["y"] = np.random.default_rng(9).normal(size=val["y"].shape) * 3
    res = fit(init_fn, loss_fn, data, val, _cfg(epochs=200, patience=4), key=jax.random.key(0))
    assert res.stopped_early and res.epochs_run < 200
    assert res.epochs_run == res.best_epoch + 1 + 4
    v = float(loss_fn(jax.tree.map(jnp.asarray, res.params), jax.tree.map(jnp.asarray, val), None)[0])
    np.testing.assert_allclose(v, res.best_val, rtol=1e-6)


def test_schedule_warmup_and_cosine():
    cfg = _cfg(epochs=10, warmup_epochs=2, learning_rate=1.0, end_lr_fraction=0.1)
    lrs = [learning_rate_at(s, 5, cfg) for s in range(50)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) <= 0)
    assert lrs[-1] == pytest.approx(0.1, abs=2e-3)


def test_plateau_schedule_reduces_lr():
    init_fn, loss_fn = _fns()
    val = _problem(32, seed=5)
    val["y"] = np.random.default_rng(9).normal(size=val["y"].shape) * 3
    cfg = _cfg(epochs=12, schedule="plateau", plateau_patience=2, plateau_factor=0.5, warmup_epochs=0)
    res = fit(init_fn, loss_fn, _problem(48), val, cfg, key=jax.random.key(0))
    lr = res.history["lr"]
    assert lr[-1] < lr[0] and set(np.round(np.asarray(lr) / lr[0], 6)) <= {1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125}


def test_bad_input_raises():
    init_fn, loss_fn = _fns()
    data = _problem(16)
    with pytest.raises(ValueError, match="leading entry axis"):
        fit(init_fn, loss_fn, {"x": data["x"], "y": data["y"][:5]}, None, _cfg(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="non-finite training loss"):
        bad = dict(data)
        bad["y"] = np.full_like(data["y"], np.inf)
        with jax.debug_nans(False):
            fit(init_fn, loss_fn, bad, None, _cfg(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
