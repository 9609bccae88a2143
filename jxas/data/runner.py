"""Resumable, parallel generation runs: specs -> worker processes (or Dask) -> one HDF5 dataset.

:func:`generate` runs ``worker(spec, recipe) -> entry`` (by default the local-environment builder plus
FEFF10, :func:`jxas.data.build.make_entry`) over a deterministic list of specs (by default
:func:`jxas.data.build.campaign_specs(element, n, seed=seed)`), on a pool of worker processes or on a
Dask cluster, and stores the entries in a :class:`~jxas.data.dataset.Dataset`.

Crash safety (:mod:`jxas.data.journal`). The parent is the only writer. A finished entry (or a failure
with its reason) is first written to a journal folder ``<out>.journal/`` as one file, atomically
(temporary name, fsync, rename). Every ``flush_every`` entries / ``flush_seconds`` the journal is merged
into the HDF5 file on a copy that atomically replaces the file (``os.replace``), and only then are the
journal files removed. Killing the run at any moment (SIGKILL included) therefore leaves a readable file
plus a journal; the next run merges the journal (skipping keys already stored) and continues with the
specs whose key is neither an entry nor a recorded failure: it loses only the tasks in flight and never
duplicates a key. A lock file (``<out>.lock``, ``flock``) keeps two runs off one file.

Workers (:mod:`jxas.data.pools`). In the process pool every worker is a long-lived process (spawned, so
JAX/FEFF state is clean) that dies with the parent (``PR_SET_PDEATHSIG``); a task running past
``timeout`` has its worker's whole process tree killed and is recorded as a failure; a worker that dies
(killed, crashed) has its task retried up to ``retries`` times on a fresh worker. With ``scheduler=`` (a
Dask scheduler address, or ``"local"`` for a :class:`distributed.LocalCluster`) tasks go to Dask
instead; there a running task cannot be killed, so a timeout is recorded and the task abandoned (FEFF's
own timeout inside :func:`jxas.data.simulate_feff` bounds it).

Determinism. The task list is the spec list (deterministic for a seed); each task's randomness lives in
its spec; when a run completes, the file is rewritten in spec order, so the same seed gives the same
file whatever the scheduling (up to timings in the provenance).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shlex
import signal
import socket
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jxas.data.dataset import Dataset, to_json, write_data_card
from jxas.data.journal import _RUNS_ATTR, _drop_failures, _journal_write, _merge, _reorder
from jxas.data.pools import _DaskPool, _ProcessPool

__all__ = ["generate", "GenerationReport", "RunLockedError"]


class RunLockedError(RuntimeError):
    """Another generation run holds the output file's lock."""


@dataclasses.dataclass
class GenerationReport:
    """What one :func:`generate` call did (also appended to the file's ``generation_runs`` attr).

    Attributes:
        path: the dataset file.
        n_specs: tasks in the campaign (all specs).
        n_done_before: entries + failures already in the file (or its journal) when the run started.
        n_new: entries written by this run.
        n_failed: failures recorded by this run.
        n_retried: tasks re-run after their worker died.
        n_forgotten: recorded failures dropped to be run again (``retry_failed``).
        n_pending: tasks still not done when the run stopped (0 when complete).
        wall_s: wall time of the run (s).
        task_s: wall time per finished task measured in the worker (s), successes only.
        workers: worker processes (or Dask threads).
        scheduler: ``None`` (process pool), ``"local"`` or the Dask address.
        started: UTC ISO time the run started.
    """

    path: str
    n_specs: int
    n_done_before: int
    n_new: int = 0
    n_failed: int = 0
    n_retried: int = 0
    n_forgotten: int = 0
    n_pending: int = 0
    wall_s: float = 0.0
    task_s: list[float] = dataclasses.field(default_factory=list)
    workers: int = 1
    scheduler: str | None = None
    started: str = ""

    @property
    def entries_per_hour(self) -> float:
        """New entries per hour of wall time."""
        return 3600.0 * self.n_new / self.wall_s if self.wall_s > 0 else float("nan")

    def summary(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("task_s")
        d["entries_per_hour"] = self.entries_per_hour
        d["median_task_s"] = float(np.median(self.task_s)) if self.task_s else None
        return d


# ----------------------------------------------------------------------------- worker side
# ----------------------------------------------------------------------------- the run
def _default_specs(element: str, n: int, seed: int) -> list[dict]:
    from jxas.data import build

    return build.campaign_specs(element, n, seed=seed)


def _default_worker():
    from jxas.data import build

    return build.make_entry


def _default_recipe():
    from jxas.data.feff import FeffRecipe

    return FeffRecipe()


def _recipe_json(recipe: Any) -> dict:
    if recipe is None:
        return {}
    if hasattr(recipe, "to_dict"):
        return recipe.to_dict()
    if dataclasses.is_dataclass(recipe):
        return dataclasses.asdict(recipe)
    if isinstance(recipe, dict):
        return recipe
    raise TypeError(f"recipe must be a dict, a dataclass or have to_dict(), got {type(recipe).__name__}")


def _check_specs(specs: Sequence[dict]) -> None:
    seen = set()
    for i, s in enumerate(specs):
        if not isinstance(s, dict) or not isinstance(s.get("key"), str) or not s["key"]:
            raise ValueError(f"spec {i} must be a dict with a non-empty string 'key', got {s!r:.200}")
        if s["key"] in seen:
            raise ValueError(f"spec key {s['key']!r} appears twice in the task list")
        seen.add(s["key"])
        try:
            to_json(s)
        except (TypeError, ValueError) as e:
            raise ValueError(f"spec {s['key']!r} is not JSON-able ({e})") from None


@contextlib.contextmanager
def _sigterm_as_exit():
    """SIGTERM (batch schedulers, ``timeout``) ends the run like Ctrl-C: workers stopped, journal merged."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _lock(out: Path):
    lock_path = out.with_name(out.name + ".lock")
    fh = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{out}: another generation run is writing this file ({lock_path} is locked)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def generate(
    out: str | os.PathLike,
    *,
    element: str,
    n: int | None = None,
    seed: int = 0,
    edge: str = "K",
    recipe: Any = None,
    workers: int = 2,
    scheduler: str | None = None,
    timeout: float = 900.0,
    retries: int = 1,
    retry_failed: bool = False,
    specs: Sequence[dict] | None = None,
    worker: Callable[[dict, Any], dict] | None = None,
    energy=None,
    n_max: int = 64,
    flush_every: int = 20,
    flush_seconds: float = 60.0,
    max_tasks: int | None = None,
    progress: bool = True,
    card: bool = True,
    card_sections: dict[str, str] | None = None,
    command: str | None = None,
) -> GenerationReport:
    """Generate (or resume) a dataset: run ``worker(spec, recipe)`` for every spec not yet done.

    Args:
        out: the dataset ``.h5`` (created if missing; resumed otherwise; element, edge, recipe and
            grid must match the file).
        element: absorbing element symbol.
        n: number of specs to build with :func:`jxas.data.build.campaign_specs` (ignored when
            ``specs`` is given).
        seed: seed of the spec list (the campaign is deterministic for a seed).
        edge: absorption edge.
        recipe: the simulation recipe passed to the worker and stored in the file (default
            :class:`jxas.data.FeffRecipe`).
        workers: worker processes (process pool) or Dask workers for ``scheduler="local"``.
        scheduler: ``None`` for the local process pool; a Dask scheduler address
            (``"tcp://host:8786"``) or ``"local"`` for a :class:`distributed.LocalCluster`.
        timeout: seconds one task may run before it is recorded as failed (its worker is killed in
            the process pool).
        retries: how often a task whose worker died is re-run before it is recorded as failed.
        retry_failed: forget the recorded failures of this campaign's specs and run them again
            (e.g. timeouts on a machine that was overloaded); the run log counts them.
        specs: explicit task list (dicts with a unique ``"key"``, optional ``"group"``), instead of
            ``campaign_specs``.
        worker: ``worker(spec, recipe) -> entry`` (a module-level, picklable function); default
            :func:`jxas.data.build.make_entry`.
        energy: grid of a new file; default :func:`jxas.spectrum.standard_grid(element, edge)`.
        n_max: initial atom slots of a new file (grows when needed).
        flush_every, flush_seconds: merge the journal into the file after this many finished tasks
            or seconds, whichever first.
        max_tasks: stop after this many tasks of this run (for timing and tests).
        progress: tqdm bar with rate and ETA.
        card: (re)write the data card ``<out>.md`` at the end (a hand-written ``<out>.notes.md``
            next to the file, if present, is included as its "Notes" section).
        card_sections: extra data-card sections ``{heading: markdown}``.
        command: the command line to quote under "How to regenerate" (the CLI passes its own).

    Returns:
        A :class:`GenerationReport`.

    Raises:
        RunLockedError: another run holds the file.
        ValueError: bad specs, or a file made for another element/edge/recipe/grid.
    """
    t_start = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = Path(out)
    element = element.strip().capitalize()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    recipe = _default_recipe() if recipe is None else recipe
    recipe_dict = _recipe_json(recipe)
    if specs is None:
        if n is None:
            raise ValueError("give n (number of environments) or an explicit specs list")
        specs = _default_specs(element, int(n), seed)
    specs = list(specs)
    _check_specs(specs)
    worker = _default_worker() if worker is None else worker
    if energy is None:
        from jxas.spectrum.grids import standard_grid

        energy = standard_grid(element, edge)
    out.parent.mkdir(parents=True, exist_ok=True)
    journal = out.with_name(out.name + ".journal")

    with _lock(out), _sigterm_as_exit():
        out.with_name(out.name + ".merging").unlink(missing_ok=True)  # debris of a killed merge
        if not out.exists():
            Dataset.create(out, element=element, edge=edge, energy=energy, recipe=recipe_dict, n_max=n_max)
        ds = Dataset(out)
        problems = []
        if ds.element != element or ds.edge != edge.upper():
            problems.append(f"it holds {ds.element} {ds.edge}-edge data, not {element} {edge.upper()}")
        if ds.recipe != json.loads(to_json(recipe_dict)):
            problems.append("it was made with a different recipe")
        if ds.energy.shape != np.shape(energy) or not np.allclose(ds.energy, energy):
            problems.append("its energy grid differs")
        if problems:
            raise ValueError(f"{out}: cannot resume into this file: {'; '.join(problems)}")
        journal.mkdir(exist_ok=True)
        _merge(out, journal)  # entries finished by a killed run
        n_forgotten = _drop_failures(out, {sp["key"] for sp in specs}) if retry_failed else 0
        ds = Dataset(out)
        done = set(ds.keys.tolist()) | set(ds.failure_keys.tolist())
        todo = deque((s["key"], s) for s in specs if s["key"] not in done)
        n_done_before = len(specs) - len(todo)
        if max_tasks is not None:
            todo = deque(list(todo)[: int(max_tasks)])
        report = GenerationReport(
            path=str(out),
            n_specs=len(specs),
            n_done_before=n_done_before,
            workers=workers,
            scheduler=scheduler,
            started=started,
            n_forgotten=n_forgotten,
        )
        attempts: dict[str, int] = {}
        pending_merge = 0
        last_merge = time.monotonic()
        bar = None
        pool: _ProcessPool | _DaskPool | None = None
        try:
            if todo:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=len(specs),
                    initial=n_done_before,
                    desc=f"{element} {edge} {out.name}",
                    unit="spec",
                    disable=not progress,
                    dynamic_ncols=True,
                    smoothing=0.1,
                )
                if scheduler is None:
                    pool = _ProcessPool(workers, worker, recipe, timeout)
                else:
                    pool = _DaskPool(workers, worker, recipe, timeout, scheduler)
                    report.workers = pool.n
            while todo or (pool is not None and pool.busy()):
                for i in pool.idle():
                    if not todo:
                        break
                    key, spec = todo.popleft()
                    attempts[key] = attempts.get(key, 0) + 1
                    pool.submit(i, key, spec)
                for kind, key, spec, payload in pool.poll(1.0):
                    record = None
                    base_prov = {"spec": spec, "attempt": attempts[key]}
                    if kind == "result":
                        status, value, seconds, host, pid = payload
                        runner_info = {"worker_s": seconds, "host": host, "pid": pid, "attempt": attempts[key]}
                        if status == "ok":
                            record = _entry_record(ds, key, spec, value, runner_info)
                            if record["kind"] == "entry":
                                report.task_s.append(seconds)
                        else:
                            record = _failure(key, value, {**base_prov, "runner": runner_info})
                    elif kind == "died":
                        if attempts[key] <= retries:
                            report.n_retried += 1
                            todo.appendleft((key, spec))
                            continue
                        record = _failure(key, f"worker died ({payload}), {attempts[key]} time(s)", base_prov)
                    elif kind == "timeout":
                        record = _failure(key, f"timeout: task ran {payload:.0f} s > {timeout:g} s", base_prov)
                    _journal_write(journal, record)
                    pending_merge += 1
                    if record["kind"] == "entry":
                        report.n_new += 1
                    else:
                        report.n_failed += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(new=report.n_new, failed=report.n_failed, refresh=False)
                if pending_merge and (pending_merge >= flush_every or time.monotonic() - last_merge > flush_seconds):
                    _merge(out, journal)
                    pending_merge, last_merge = 0, time.monotonic()
        finally:
            if pool is not None:
                pool.close()
            if bar is not None:
                bar.close()
            report.wall_s = time.monotonic() - t_start
            report.n_pending = len(specs) - n_done_before - report.n_new - report.n_failed
            _merge(out, journal, run_log=report.summary())
            if card:  # every run, interrupted ones too (Ctrl-C, SIGTERM); the card does not depend on row order
                try:
                    _write_card(out, specs, recipe_dict, command, card_sections)
                except Exception as exc:  # noqa: BLE001 - never mask the run's own outcome
                    warnings.warn(f"{out}: data card not written: {exc}", stacklevel=2)
        final = Dataset(out)
        stored = set(final.keys.tolist()) | set(final.failure_keys.tolist())
        report.n_pending = sum(1 for s in specs if s["key"] not in stored)
        if report.n_pending == 0:
            _reorder(out, [s["key"] for s in specs])
            with contextlib.suppress(OSError):
                journal.rmdir()
    return report


def _failure(key: str, reason: str, provenance: dict) -> dict:
    return {"kind": "failure", "key": key, "reason": reason, "provenance": provenance}


def _entry_record(ds: Dataset, key: str, spec: dict, entry: Any, runner_info: dict) -> dict:
    """Validate a worker's entry in the parent: a bad entry becomes a failure, never a bad file."""
    if not isinstance(entry, dict):
        return _failure(key, f"worker returned {type(entry).__name__}, not an entry dict", {"spec": spec})
    entry = dict(entry)
    if entry.setdefault("key", key) != key:
        return _failure(key, f"worker returned key {entry['key']!r} for spec {key!r}", {"spec": spec})
    entry.setdefault("group", spec.get("group", ""))
    prov = entry.get("provenance")
    prov = dict(prov) if isinstance(prov, dict) else {"worker_provenance": prov}
    prov.setdefault("spec", spec)
    prov["runner"] = runner_info
    entry["provenance"] = prov
    try:
        ds._validate(entry, 0)
    except (ValueError, TypeError) as e:
        return _failure(key, f"invalid entry: {e}", {"spec": spec, "runner": runner_info})
    return {"kind": "entry", "key": key, "entry": entry}


def _write_card(out: Path, specs, recipe_dict: dict, command: str | None, extra: dict | None) -> None:
    import h5py

    ds = Dataset(out)
    with h5py.File(out, "r") as f:
        runs = json.loads(str(f.attrs.get(_RUNS_ATTR, "[]")))
    total_wall = sum(r.get("wall_s", 0.0) for r in runs)
    n_new = sum(r.get("n_new", 0) for r in runs)
    n_fail = sum(r.get("n_failed", 0) for r in runs)
    lines = [
        f"- runs so far: {len(runs)}, total wall time {total_wall / 3600:.2f} h, {n_new} entries and "
        f"{n_fail} failures written by them"
        + (f" ({3600 * n_new / total_wall:.0f} entries/h overall)" if total_wall > 0 else ""),
        f"- campaign: {len(specs)} specs; done {len(ds) + len(ds.failure_keys)}, "
        f"failure rate {len(ds.failure_keys) / max(1, len(ds) + len(ds.failure_keys)):.1%}",
    ]
    lines += [
        f"  - {r.get('started', '?')}: {r.get('n_new', 0)} new, {r.get('n_failed', 0)} failed, "
        f"{r.get('wall_s', 0):.0f} s, {r.get('workers')} workers ({r.get('scheduler') or 'process pool'})"
        for r in runs[-20:]
    ]
    cmd = command or f"jxas generate --element {ds.element} --out {out} ..."
    sections = {
        "How it was built": (
            "Entries are made by `jxas.data.generate` (resumable parallel runner) from the spec list "
            "`jxas.data.build.campaign_specs(element, n, seed=...)`, one `make_entry(spec, recipe)` per "
            "spec (build, relax and distort the environment, then FEFF10 with the recipe below); the "
            "provenance of every entry holds its spec, FEFF version, input hash and timings."
        ),
        "How to regenerate": f"```bash\n{cmd}\n```\nRe-running the same command resumes an interrupted "
        "campaign (finished keys and recorded failures are skipped).",
        "Generation log": "\n".join(lines),
    }
    sections.update(extra or {})
    notes = out.with_suffix(".notes.md")
    if notes.is_file():  # hand-written notes survive the card being rewritten at every run
        sections["Notes"] = notes.read_text()
    write_data_card(ds, sections=sections)


def command_line(argv: Sequence[str]) -> str:
    """Shell-quoted command line for the data card."""
    return " ".join(shlex.quote(a) for a in argv)
