"""Crash-safe storage of a generation run: a journal of finished tasks merged into the HDF5 file.

The runner is the only writer. A finished entry (or a failure with its reason) is first written to the
journal folder as one file, atomically (temporary name, fsync, rename); :func:`_merge` moves journal
records into the dataset on a copy that atomically replaces the file (:func:`_atomic_copy`, the one
rewrite path), and only then removes the journal files. A reader therefore always sees a complete
file, and a killed run leaves at most a journal to merge on the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jxas.data.dataset import Dataset, to_json

_RUNS_ATTR = "generation_runs"  # file attribute: JSON list of the summaries of every run


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _journal_write(journal: Path, record: dict) -> None:
    name = hashlib.sha1(record["key"].encode()).hexdigest()
    tmp = journal / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(record, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, journal / f"{name}.pkl")


def _journal_read(journal: Path) -> tuple[list[Path], list[dict]]:
    files, records = [], []
    for p in sorted(journal.glob("*.pkl")):
        try:
            with open(p, "rb") as fh:
                records.append(pickle.load(fh))
            files.append(p)
        except Exception:  # noqa: BLE001 - cannot happen for renamed files; never block a resume on one
            p.rename(p.with_suffix(".unreadable"))
    return files, records


@contextlib.contextmanager
def _atomic_copy(out: Path):
    """Yield a scratch copy of ``out`` to edit; on success it atomically replaces ``out`` (fsynced), on any
    error it is removed and ``out`` is untouched. The one crash-safe rewrite path of the runner."""
    tmp = out.with_name(out.name + ".merging")
    shutil.copyfile(out, tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _merge(out: Path, journal: Path, run_log: dict | None = None) -> int:
    """Merge the journal into ``out`` through an atomically replaced copy. Returns records merged."""
    files, records = _journal_read(journal)
    if not files and run_log is None:
        return 0
    with _atomic_copy(out) as tmp:
        ds = Dataset(tmp)
        entries = [r["entry"] for r in records if r["kind"] == "entry"]
        if entries:
            ds.append(entries, on_duplicate="skip")
        done = set(ds.keys.tolist()) | set(ds.failure_keys.tolist())
        for r in records:
            if r["kind"] == "failure" and r["key"] not in done:
                ds.append_failure(r["key"], r["reason"], r["provenance"])
                done.add(r["key"])
        if run_log is not None:
            import h5py

            with h5py.File(tmp, "a") as f:
                runs = json.loads(str(f.attrs.get(_RUNS_ATTR, "[]")))
                runs.append(run_log)
                f.attrs[_RUNS_ATTR] = to_json(runs)
    for p in files:
        p.unlink(missing_ok=True)
    return len(files)


def _drop_failures(out: Path, keys: set[str]) -> int:
    """Remove the failure records of ``keys`` (through an atomically replaced copy); returns how many."""
    import h5py

    ds = Dataset(out)
    drop = np.isin(ds.failure_keys, list(keys))
    if not drop.any():
        return 0
    with _atomic_copy(out) as tmp, h5py.File(tmp, "a") as f:
        g = f["failures"]
        n = len(ds.failure_keys)
        keep = ~drop
        for name in ("reason", "provenance", "key"):
            data = g[name][:n][keep]
            g[name].resize(int(keep.sum()), axis=0)
            g[name][...] = data
        f.flush()
    return int(drop.sum())


def _permute_rows(group, n: int, order: np.ndarray) -> None:
    """Permute the first axis of every length-``n`` dataset directly in ``group``."""
    import h5py

    for name, d in group.items():
        if not isinstance(d, h5py.Dataset) or name == "energy" or d.shape[:1] != (n,):
            continue
        data = d[()][order]
        if h5py.check_vlen_dtype(d.dtype) is not None and h5py.check_string_dtype(d.dtype) is None:
            for j in range(n):  # vlen float rows one by one (h5py mis-broadcasts empty rows)
                d[j] = data[j]
        else:
            d[...] = data


def _reorder(out: Path, keys_in_order: Sequence[str]) -> bool:
    """Rewrite ``out`` with entries and failures in spec order (through an atomically replaced copy)."""
    import h5py

    ds = Dataset(out)
    rank = {k: i for i, k in enumerate(keys_in_order)}
    orders = {}
    for where, keys in (("/", ds.keys.tolist()), ("failures", ds.failure_keys.tolist())):
        order = np.argsort([rank.get(k, len(rank)) for k in keys], kind="stable")
        if not np.array_equal(order, np.arange(len(keys))):
            orders[where] = (len(keys), order)
    if not orders:
        return False
    with _atomic_copy(out) as tmp, h5py.File(tmp, "a") as f:
        for where, (n, order) in orders.items():
            _permute_rows(f[where], n, order)
        f.flush()
    return True
