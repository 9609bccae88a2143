"""jxas.data.generate: process pool and Dask runs, timeouts, killed workers, SIGKILL + resume, determinism.

The worker used here is cheap and deterministic (a radial-distribution "spectrum" of a distorted FeO6
octahedron built from the spec's seed), so a resumed or rescheduled run can be checked entry by entry
against a direct call. One test runs the real FEFF10 through the runner.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

from jxas.data.dataset import Dataset
from jxas.data.runner import RunLockedError, generate
from jxas.structure import Structure

GRID = np.linspace(7100.0, 7180.0, 81)
TESTS = Path(__file__).parent


def cheap_worker(spec: dict, recipe: dict) -> dict:
    """FeO6 with random bond stretches from the spec's seed; mu = broadened radial distribution on GRID."""
    if spec.get("sleep"):
        time.sleep(spec["sleep"])
    if spec.get("pidfile"):
        Path(spec["pidfile"]).write_text(str(os.getpid()))
    if spec.get("hang"):
        time.sleep(3600)
    if spec.get("suicide"):  # a worker that crashes hard (segfault-like)
        os.kill(os.getpid(), signal.SIGKILL)
    if spec.get("fail"):
        raise RuntimeError(f"builder failed for {spec['key']}: no placement without clashes")
    rng = np.random.default_rng(spec["seed"])
    dirs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    r = 2.0 + rng.uniform(-0.2, 0.2, size=6)
    pos = np.vstack([np.zeros(3), dirs * r[:, None]])
    num = np.array([26] + [8] * 6, np.int32)
    e_of_r = 7100.0 + recipe["scale"] / r**2  # shorter bonds, higher-lying resonance (Natoli's rule, roughly)
    mu = np.arctan((GRID - 7112.0) / 2.0) / np.pi + 0.5
    mu = mu + 0.1 * np.exp(-0.5 * ((GRID[:, None] - e_of_r[None, :]) / 3.0) ** 2).sum(axis=1)
    if spec.get("nan"):
        mu[10] = np.nan
    s = Structure(
        positions=pos,
        numbers=num,
        mask=np.ones(7, bool),
        absorber=np.asarray(0, np.int32),
        charge=np.asarray(-4 + spec["seed"] % 2, np.int32),
        spin=np.asarray(4, np.int32),
    )
    return dict(
        structure=s,
        mu=mu,
        raw_energy=GRID,
        raw_mu=mu,
        key=spec["key"],
        group=spec["group"],
        oxidation_state=2,
        provenance={"builder": "cheap_worker", "seed": spec["seed"]},
    )


RECIPE = {"name": "cheap-test", "scale": 150.0}


def _specs(n, prefix="e", **extra):
    return [{"key": f"{prefix}{i:03d}", "group": f"g{i // 3}", "seed": 1000 + i, **extra} for i in range(n)]


def _run(path, specs, **kw):
    kw.setdefault("workers", 2)
    kw.setdefault("progress", False)
    return generate(path, element="Fe", specs=specs, worker=cheap_worker, recipe=RECIPE, energy=GRID, **kw)


def _assert_matches_direct(ds: Dataset, specs):
    """Every stored entry equals a direct worker call: nothing duplicated, shuffled or corrupted."""
    keys = ds.keys.tolist()
    assert len(keys) == len(set(keys))
    by_key = {s["key"]: s for s in specs}
    mu = ds.spectra()
    st = ds.structures()
    for i, k in enumerate(keys):
        ref = cheap_worker({**by_key[k], "sleep": 0}, RECIPE)
        np.testing.assert_allclose(mu[i], ref["mu"], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(st.positions[i, :7]), ref["structure"].positions, atol=1e-6)
        assert ds.groups[i] == by_key[k]["group"]
        assert ds.provenance(i)["seed"] == by_key[k]["seed"]


def test_process_pool_run_records_failures_and_is_idempotent(tmp_path):
    specs = _specs(10)
    specs[3]["fail"] = True
    specs[7]["nan"] = True
    path = tmp_path / "fe.h5"
    path.with_suffix(".notes.md").write_text("Made for the runner test.")
    rep = _run(path, specs, flush_every=4)
    assert (rep.n_new, rep.n_failed, rep.n_pending, rep.n_done_before) == (8, 2, 0, 0)
    ds = Dataset(path)
    good = [s["key"] for s in specs if not (s.get("fail") or s.get("nan"))]
    assert ds.keys.tolist() == good  # spec order, whatever the completion order
    _assert_matches_direct(ds, specs)
    fails = {f["key"]: f["reason"] for f in ds.failures}
    assert "builder failed for e003" in fails["e003"] and "RuntimeError" in fails["e003"]
    assert "NaN" in fails["e007"] and fails["e007"].startswith("invalid entry")
    assert ds.recipe == RECIPE and ds.provenance(0)["runner"]["attempt"] == 1
    card = path.with_suffix(".md").read_text()
    assert "entries: 8" in card and "failures recorded: 2" in card and "Generation log" in card
    assert "## Notes\n\nMade for the runner test." in card
    assert not path.with_name("fe.h5.journal").exists()
    # a second run has nothing to do and changes nothing
    before = path.read_bytes()
    rep2 = _run(path, specs)
    assert (rep2.n_new, rep2.n_failed, rep2.n_done_before) == (0, 0, 10)
    ds2 = Dataset(path)
    np.testing.assert_array_equal(ds2.spectra(), ds.spectra())
    assert len(before) > 0 and len(ds2.failures) == 2
    # the builder got fixed: run the recorded failures again
    rep3 = _run(path, _specs(10), retry_failed=True)
    assert (rep3.n_forgotten, rep3.n_new, rep3.n_failed) == (2, 2, 0)
    ds3 = Dataset(path)
    assert ds3.keys.tolist() == [s["key"] for s in specs] and ds3.failures == []
    _assert_matches_direct(ds3, _specs(10))


def test_deterministic_across_worker_counts(tmp_path):
    specs = _specs(6)
    _run(tmp_path / "a.h5", specs, workers=1)
    _run(tmp_path / "b.h5", specs, workers=2)
    a, b = Dataset(tmp_path / "a.h5"), Dataset(tmp_path / "b.h5")
    assert a.keys.tolist() == b.keys.tolist()
    np.testing.assert_array_equal(a.spectra(), b.spectra())
    np.testing.assert_array_equal(np.asarray(a.structures().positions), np.asarray(b.structures().positions))


def test_timeout_and_crashing_worker_are_recorded_failures(tmp_path):
    pidfile = tmp_path / "hang.pid"
    specs = _specs(4)
    specs[1].update(hang=True, pidfile=str(pidfile))
    specs[2].update(suicide=True)
    t0 = time.monotonic()
    rep = _run(tmp_path / "fe.h5", specs, timeout=3.0, retries=1)
    assert time.monotonic() - t0 < 60
    assert (rep.n_new, rep.n_failed, rep.n_retried) == (2, 2, 1)
    hang, crash = Dataset(tmp_path / "fe.h5").failures
    assert hang["key"] == "e001" and hang["reason"].startswith("timeout")
    assert crash["key"] == "e002" and crash["reason"] == "worker died (exit code -9), 2 time(s)"
    pid = int(pidfile.read_text())
    time.sleep(0.5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import test_runner as t
    from jxas.data.runner import generate
    specs = t._specs({n}, sleep={sleep})
    rep = generate({path!r}, element="Fe", specs=specs, worker=t.cheap_worker, recipe=t.RECIPE, energy=t.GRID,
                   workers=2, progress=False, flush_every={flush}, retries=1)
    print("REPORT", rep.n_new, rep.n_failed, rep.n_retried)
    """
)


def _start(path, n, sleep, flush=2):
    code = _SCRIPT.format(tests=str(TESTS), n=n, sleep=sleep, path=str(path), flush=flush)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _workers_of(proc: subprocess.Popen, n: int = 2, wait_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        kids = [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        if len(kids) >= n:
            return kids
        time.sleep(0.2)
    raise AssertionError(f"run did not start {n} workers: {proc.communicate(timeout=5)}")


def _wait_for(cond, wait_s=60.0):
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_killed_worker_is_replaced_and_its_task_retried(tmp_path):
    path = tmp_path / "fe.h5"
    proc = _start(path, n=12, sleep=0.6)
    try:
        workers = _workers_of(proc)
        time.sleep(1.0)  # both busy with a task
        workers[0].send_signal(signal.SIGKILL)  # a real worker process, mid-task
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    n_new, n_failed, n_retried = (int(v) for v in out.split("REPORT")[1].split())
    assert (n_new, n_failed) == (12, 0) and n_retried >= 1
    ds = Dataset(path)
    assert len(ds) == 12
    _assert_matches_direct(ds, _specs(12))
    with h5py.File(path) as f:
        (run,) = json.loads(f.attrs["generation_runs"])
    assert run["n_retried"] >= 1


def test_sigkill_of_the_whole_run_then_resume(tmp_path):
    """SIGKILL the parent mid-run: workers die with it, the file stays readable, the resume completes it."""
    path = tmp_path / "fe.h5"
    n = 16
    proc = _start(path, n=n, sleep=0.4, flush=3)
    workers = _workers_of(proc)
    journal = path.with_name("fe.h5.journal")

    def stored():
        try:
            return len(Dataset(path)) >= 3
        except Exception:  # noqa: BLE001 - file not created yet
            return False

    _wait_for(stored)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for w in workers:  # PR_SET_PDEATHSIG: no orphans
        _wait_for(lambda w=w: not w.is_running() or w.status() == psutil.STATUS_ZOMBIE, wait_s=10)
    ds = Dataset(path)  # readable after the kill
    n_file = len(ds)
    n_journal = len(list(journal.glob("*.pkl")))
    assert 3 <= n_file < n
    _assert_matches_direct(ds, _specs(n))
    rep = _run(path, _specs(n, sleep=0.0))
    # nothing lost beyond the tasks in flight (at most 2 workers), nothing duplicated
    assert rep.n_done_before == n_file + n_journal
    assert rep.n_new == n - n_file - n_journal and rep.n_failed == 0
    ds = Dataset(path)
    assert ds.keys.tolist() == [s["key"] for s in _specs(n)]
    _assert_matches_direct(ds, _specs(n))
    assert not journal.exists()


def test_sigterm_stops_cleanly(tmp_path):
    """SIGTERM: workers stopped, finished entries merged (journal empty), the run logged; then resumable."""
    path = tmp_path / "fe.h5"
    n = 12
    proc = _start(path, n=n, sleep=0.4, flush=100)
    workers = _workers_of(proc)
    journal = path.with_name("fe.h5.journal")
    _wait_for(lambda: len(list(journal.glob("*.pkl"))) >= 2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    for w in workers:
        _wait_for(lambda w=w: not w.is_running() or w.status() == psutil.STATUS_ZOMBIE, wait_s=10)
    assert not list(journal.glob("*.pkl"))  # everything finished is in the file
    ds = Dataset(path)
    assert 2 <= len(ds) < n
    with h5py.File(path) as f:
        (run,) = json.loads(f.attrs["generation_runs"])
    assert run["n_new"] == len(ds)
    card = path.with_suffix(".md")  # the interrupted run's card describes what the file holds
    assert card.is_file() and f"entries: {len(ds)} " in card.read_text()
    rep = _run(path, _specs(n))
    assert rep.n_new == n - len(ds)
    _assert_matches_direct(Dataset(path), _specs(n))


def test_dask_local_cluster_gives_the_same_file(tmp_path):
    pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Dask workers cannot import tests/
    specs = _specs(6)
    specs[2]["fail"] = True
    rep = _run(tmp_path / "dask.h5", specs, scheduler="local", workers=2)
    assert (rep.n_new, rep.n_failed, rep.n_pending) == (5, 1, 0) and rep.scheduler == "local"
    # the same campaign through a scheduler address (a cluster started elsewhere), one worker
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rep2 = _run(tmp_path / "addr.h5", specs, scheduler=cluster.scheduler_address)
    assert (rep2.n_new, rep2.n_failed) == (5, 1) and rep2.workers == 1
    a, b = Dataset(tmp_path / "dask.h5"), Dataset(tmp_path / "addr.h5")
    assert a.keys.tolist() == b.keys.tolist() == [s["key"] for s in specs if not s.get("fail")]
    np.testing.assert_array_equal(a.spectra(), b.spectra())
    _assert_matches_direct(a, specs)
    assert [f["key"] for f in a.failures] == ["e002"] and "builder failed" in a.failures[0]["reason"]
    assert {p["runner"]["pid"] for p in (a.provenance(i) for i in range(len(a)))} != {os.getpid()}


def test_bad_input(tmp_path):
    path = tmp_path / "fe.h5"
    with pytest.raises(ValueError, match="appears twice"):
        _run(path, _specs(2) + _specs(1))
    with pytest.raises(ValueError, match="non-empty string 'key'"):
        _run(path, [{"group": "x"}])
    with pytest.raises(ValueError, match="workers"):
        _run(path, _specs(2), workers=0)
    assert not path.exists()
    _run(path, _specs(2))
    with pytest.raises(ValueError, match="different recipe"):
        generate(
            path,
            element="Fe",
            specs=_specs(2),
            worker=cheap_worker,
            recipe={"name": "other", "scale": 1.0},
            energy=GRID,
            progress=False,
        )
    with pytest.raises(ValueError, match="Co K-edge|not Co"):
        generate(path, element="Co", specs=_specs(2), worker=cheap_worker, recipe=RECIPE, energy=GRID, progress=False)
    with open(path.with_name("fe.h5.lock"), "a+") as fh:  # another run holds the file
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunLockedError, match="another generation run"):
            _run(path, _specs(3))
    assert len(Dataset(path)) == 2


def feff_worker(spec: dict, recipe) -> dict:
    """A real FEFF10 run on a tiny octahedral FeO6 cluster (Fe-O from the spec)."""
    from jxas.data.feff import simulate_feff

    d = spec["r"]
    dirs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    s = Structure(
        positions=np.vstack([np.zeros(3), d * dirs]),
        numbers=np.array([26] + [8] * 6, np.int32),
        mask=np.ones(7, bool),
        absorber=np.asarray(0, np.int32),
        charge=np.asarray(0, np.int32),
        spin=np.asarray(0, np.int32),
    )
    spec_out = simulate_feff(s, recipe, timeout=120)
    m = spec_out.meta
    return dict(
        structure=s,
        mu=np.asarray(spec_out.mu),
        raw_energy=m["raw_energy"],
        raw_mu=m["raw_mu"],
        key=spec["key"],
        group="feo6",
        oxidation_state=2,
        provenance={
            "feff_version": m["feff_version"],
            "input_hash": m["input_hash"],
            "timings": {"feff_s": m["seconds"]},
        },
    )


@pytest.mark.feff
def test_real_feff_through_the_runner(tmp_path):
    from jxas.data.feff import FeffRecipe
    from jxas.spectrum.grids import standard_grid

    specs = [{"key": "feo6-2.00", "group": "feo6", "r": 2.00}, {"key": "feo6-2.15", "group": "feo6", "r": 2.15}]
    rep = generate(
        tmp_path / "fe.h5",
        element="Fe",
        specs=specs,
        worker=feff_worker,
        recipe=FeffRecipe(),
        workers=2,
        progress=False,
        timeout=200,
    )
    assert (rep.n_new, rep.n_failed) == (2, 0)
    ds = Dataset(tmp_path / "fe.h5")
    np.testing.assert_array_equal(ds.energy, standard_grid("Fe"))
    mu = ds.spectra()
    assert np.all(np.isfinite(mu)) and mu[:, :10].max() < 0.3 and 0.6 < mu[:, -40:].mean() < 1.4
    assert not np.allclose(mu[0], mu[1])  # the bond length changes the spectrum
    assert ds.provenance(0)["feff_version"] and ds.recipe["name"] == "feff10-default"
    raw_e, raw_mu = ds.raw(0)
    assert raw_e.size > 50 and raw_e[0] < ds.energy[0]


def test_cli_generate_bad_input_writes_nothing(tmp_path, capsys):
    from jxas.cli import main

    out = tmp_path / "og.h5"
    assert main(["generate", "--element", "Og", "--n", "2", "--out", str(out), "--no-progress"]) == 1
    assert "Og" in capsys.readouterr().err
    assert main(["generate", "--element", "Fe", "--n", "2", "--out", str(out), "--set", "fms_radius"]) == 1
    assert "FIELD=VALUE" in capsys.readouterr().err
    assert main(["generate", "--element", "Fe", "--n", "2", "--out", str(out), "--set", "colour=5"]) == 1
    assert "unknown FeffRecipe fields" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # builder + GFN-FF + FEFF on two specs: 30-90 s on two busy cores
@pytest.mark.feff
@pytest.mark.xtb
def test_cli_generate_real_campaign_entry(tmp_path, capsys):
    """`jxas generate` end to end: builder + GFN-FF + FEFF10 on one spec, then `jxas dataset info`."""
    from jxas.cli import main

    out = tmp_path / "fe.h5"
    argv = ["generate", "--element", "Fe", "--n", "2", "--out", str(out), "--workers", "2", "--no-progress"]
    assert main(argv) == 0
    ds = Dataset(out)
    assert len(ds) + len(ds.failures) == 2
    for f in ds.failures:  # a builder or FEFF failure carries its reason
        assert f["reason"] and f["provenance"]["spec"]["key"] == f["key"]
    if len(ds):
        prov = ds.provenance(0)
        assert prov["feff_version"] and prov["seconds"]["feff"] > 0 and prov["input_hash"]
        assert ds.recipe["name"] == "feff10-default"
    card = out.with_suffix(".md").read_text()
    assert "jxas generate --element Fe --edge K --n 2 --seed 0" in card
    assert "## Local environments" in card and "Molecular first- and second-shell environments of Fe" in card
    capsys.readouterr()
    assert main(["dataset", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_entries"] + info["n_failures"] == 2
