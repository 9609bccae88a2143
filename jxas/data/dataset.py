"""HDF5 datasets of structures and spectra: one file per element / edge / recipe.

The format (``format = "jxas-dataset"``, ``format_version = 1``) stores padded absorber-centred
structures, unconvolved spectra on one absolute energy grid, FEFF's own raw grid per entry, and
per-entry provenance; failed entries are kept with their reason so a campaign can be audited and
resumed. Loading yields padded :class:`~jxas.structure.Structure` batches ready for ``jax.vmap``.

Layout (``N`` entries, ``n_max`` atom slots, ``E`` energy points)::

    attrs     format, format_version, element, edge, recipe (JSON), n_max, created_by
    energy    [E] float64           absolute photon energy (eV) of ``mu``
    positions [N, n_max, 3] float32 Å (padding 0)       numbers  [N, n_max] int16 (padding 0)
    mask      [N, n_max] bool                           absorber [N] int32
    charge    [N] int16      spin [N] int16 (unpaired electrons)
    mu        [N, E] float32 unconvolved absorption on ``energy``
    raw_energy, raw_mu [N] variable-length float64 (the simulation's own grid; may be empty)
    key, group, split [N] str       oxidation_state [N] int16 (-99 unknown)
    provenance [N] JSON str
    failures/key, failures/reason, failures/provenance  [F] str

Every entry dataset is resizable along axis 0 (and the atom axis, so ``n_max`` grows when a larger
structure is appended). Appends validate everything first and then write and flush in one go, so a
bad entry never leaves a half-written file; ``key`` is written last, and rows beyond it are ignored.
A process killed *inside* an in-place HDF5 write can still leave the library's metadata
inconsistent: long campaigns therefore write through :func:`jxas.data.generate`, which appends to a
copy and swaps it in with ``os.replace`` (see :mod:`jxas.data.runner`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jxas.structure import Structure

__all__ = ["Dataset", "FORMAT", "FORMAT_VERSION", "UNKNOWN_OXIDATION_STATE", "to_json", "write_data_card"]

FORMAT = "jxas-dataset"
FORMAT_VERSION = 1
UNKNOWN_OXIDATION_STATE = -99

_STR = h5py.string_dtype("utf-8")
_BULK = ("positions", "numbers", "mask", "absorber", "charge", "spin", "mu")
_VLEN_F64 = h5py.vlen_dtype(np.float64)
_CHUNK_ROWS = 256
_ENTRY_KEYS = ("structure", "mu", "key")
_OPTIONAL_DEFAULTS = {
    "raw_energy": None,
    "raw_mu": None,
    "group": "",
    "split": "",
    "oxidation_state": UNKNOWN_OXIDATION_STATE,
    "provenance": None,
}


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray) or hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def to_json(obj: Any) -> str:
    """JSON text of provenance/recipe objects (NumPy scalars/arrays and dataclasses allowed)."""
    return json.dumps(obj, default=_json_default, sort_keys=True, allow_nan=False)


def _decode(a) -> np.ndarray:
    """h5py returns bytes for vlen str under some versions: always give NumPy str."""
    a = np.asarray(a, dtype=object)
    return (
        np.array([x.decode() if isinstance(x, bytes) else str(x) for x in a.ravel()], dtype=object)
        .reshape(a.shape)
        .astype(str)
        if a.size
        else np.zeros(a.shape, dtype=str)
    )


class Dataset:
    """A jxas HDF5 dataset (see the module docstring for the layout).

    ``Dataset(path)`` opens an existing file; :meth:`create` makes a new one. The file is opened only
    for the duration of each read or append, so a reader never holds a lock that blocks a writer.

    Example:
        >>> ds = Dataset("datasets/cu-k-omnixas-feff9.h5")           # doctest: +SKIP
        >>> s, mu = ds.structures([0, 1]), ds.spectra([0, 1])       # doctest: +SKIP
        >>> for batch, mu in ds.batches(64, key=jax.random.key(0)):  # doctest: +SKIP
        ...     pred = jax.vmap(model)(batch)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such dataset file")
        self._load_header()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        element: str,
        edge: str = "K",
        energy,
        recipe: dict | str | Any,
        n_max: int = 32,
        created_by: str | None = None,
        overwrite: bool = False,
    ) -> Dataset:
        """Create an empty dataset file.

        Args:
            path: the ``.h5`` file to create (its folder must exist).
            element: absorbing element symbol, e.g. ``"Fe"``.
            edge: absorption edge, e.g. ``"K"``.
            energy: ``[E]`` strictly increasing absolute energy grid (eV) on which ``mu`` is stored.
            recipe: the simulation recipe (a dict, a dataclass or JSON text), stored as JSON.
            n_max: initial number of atom slots per entry (grows on append when needed).
            created_by: provenance string; default ``"jxas <version>"``.
            overwrite: replace an existing file instead of raising.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
            ValueError: bad element/edge/energy/n_max.
        """
        from jxas import __version__

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: dataset file already exists (pass overwrite=True to replace it)")
        element = str(element).strip().capitalize()
        from ase.data import atomic_numbers

        if element not in atomic_numbers or element == "X":
            raise ValueError(f"{path}: unknown element {element!r}")
        energy = np.asarray(energy, np.float64)
        if energy.ndim != 1 or energy.size < 2 or not np.all(np.isfinite(energy)) or np.any(np.diff(energy) <= 0):
            raise ValueError(
                f"{path}: energy must be a finite, strictly increasing 1-D grid (got shape {energy.shape})"
            )
        if int(n_max) < 1:
            raise ValueError(f"{path}: n_max must be >= 1, got {n_max}")
        recipe_json = recipe if isinstance(recipe, str) else to_json(recipe)
        json.loads(recipe_json)  # must be valid JSON text
        n_max = int(n_max)
        e = energy.size
        tmp = path.with_name(path.name + ".creating")
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT,
                format_version=FORMAT_VERSION,
                element=element,
                edge=str(edge).strip().upper(),
                recipe=recipe_json,
                n_max=n_max,
                created_by=created_by or f"jxas {__version__}",
            )
            f.create_dataset("energy", data=energy)
            rows = _CHUNK_ROWS
            cz = dict(compression="gzip", compression_opts=4, shuffle=True)
            f.create_dataset(
                "positions",
                (0, n_max, 3),
                np.float32,
                maxshape=(None, None, 3),
                chunks=(rows, min(n_max, 64), 3),
                **cz,
            )
            f.create_dataset(
                "numbers", (0, n_max), np.int16, maxshape=(None, None), chunks=(rows, min(n_max, 64)), **cz
            )
            f.create_dataset("mask", (0, n_max), bool, maxshape=(None, None), chunks=(rows, min(n_max, 64)), **cz)
            f.create_dataset("mu", (0, e), np.float32, maxshape=(None, e), chunks=(min(rows, 64), e), **cz)
            for name, dt in [
                ("absorber", np.int32),
                ("charge", np.int16),
                ("spin", np.int16),
                ("oxidation_state", np.int16),
            ]:
                f.create_dataset(name, (0,), dt, maxshape=(None,), chunks=(1024,))
            for name in ("raw_energy", "raw_mu"):
                f.create_dataset(name, (0,), _VLEN_F64, maxshape=(None,), chunks=(rows,))
            for name in ("key", "group", "split", "provenance"):
                f.create_dataset(name, (0,), _STR, maxshape=(None,), chunks=(rows,))
            g = f.create_group("failures")
            for name in ("key", "reason", "provenance"):
                g.create_dataset(name, (0,), _STR, maxshape=(None,), chunks=(64,))
        os.replace(tmp, path)  # a half-created file is never visible under its real name
        return cls(path)

    # ------------------------------------------------------------------ header / small columns
    def _open(self, mode: str = "r") -> h5py.File:
        try:
            f = h5py.File(self.path, mode)
        except OSError as e:
            raise OSError(f"{self.path}: cannot open as HDF5 ({e})") from None
        return f

    def _load_header(self) -> None:
        with self._open() as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{self.path}: not a jxas dataset (format attribute {f.attrs.get('format')!r})")
            version = int(f.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"{self.path}: unsupported format_version {version} (this jxas reads {FORMAT_VERSION})"
                )
            self.element: str = str(f.attrs["element"])
            self.edge: str = str(f.attrs["edge"])
            self.recipe: dict = json.loads(str(f.attrs["recipe"]))
            self.n_max: int = int(f.attrs["n_max"])
            self.created_by: str = str(f.attrs.get("created_by", ""))
            self.energy: np.ndarray = f["energy"][()]
            # `key` is written last by append(): rows beyond it were never completed and are ignored.
            n = f["key"].shape[0]
            self.keys: np.ndarray = _decode(f["key"][()])
            self.groups: np.ndarray = _decode(f["group"][:n])
            self.splits: np.ndarray = _decode(f["split"][:n])
            self.oxidation_states: np.ndarray = f["oxidation_state"][:n].astype(np.int32)
            self.failure_keys: np.ndarray = _decode(f["failures/key"][()])
        self._cache: dict[str, np.ndarray] = {}  # full columns read so far (see load())

    def refresh(self) -> None:
        """Re-read the header and index columns (after another process appended)."""
        self._load_header()

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.path)!r}: {self.element} {self.edge}-edge, {len(self)} entries, "
            f"{len(self.failure_keys)} failures, n_max={self.n_max}, {self.energy.size} energies)"
        )

    # ------------------------------------------------------------------ reading
    def _index(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(requested indices, sorted unique indices for h5py, positions of requested in unique)."""
        n = len(self)
        if idx is None:
            req = np.arange(n)
        else:
            req = np.atleast_1d(np.asarray(idx))
            if req.dtype == bool:
                if req.shape != (n,):
                    raise IndexError(f"{self.path}: boolean index of shape {req.shape} for {n} entries")
                req = np.flatnonzero(req)
            req = req.astype(np.int64)
            if req.ndim != 1:
                raise IndexError(f"{self.path}: index must be 1-D")
            req = np.where(req < 0, req + n, req)
            if req.size and (req.min() < 0 or req.max() >= n):
                raise IndexError(f"{self.path}: index out of range for {n} entries")
        uniq, inv = np.unique(req, return_inverse=True)
        return req, uniq, inv

    def _maybe_open(self, names):
        """The file, or a null context when every column needed is already in memory."""
        if all(n in self._cache for n in names):
            return contextlib.nullcontext(None)
        return self._open()

    def _read(self, f: h5py.File, name: str, uniq: np.ndarray, inv: np.ndarray) -> np.ndarray:
        full = self._cache.get(name)
        n = len(self)
        if full is None and uniq.size > n // 4:  # reading everything then indexing beats scattered reads
            full = self._cache[name] = f[name][:n]
        if full is not None:
            return full[uniq][inv]
        d = f[name]
        if uniq.size == 0:
            return np.zeros((0,) + d.shape[1:], d.dtype)
        return d[uniq][inv]

    def load(self) -> Dataset:
        """Read the structure and spectrum arrays into memory once; later reads and batches index them.

        :meth:`batches` calls it: random batches from a compressed, chunked file would otherwise
        decompress most chunks for every batch. Returns ``self``.
        """
        with self._open() as f:
            for name in _BULK:
                if name not in self._cache:
                    self._cache[name] = f[name][: len(self)]
        return self

    def structures(self, idx=None):
        """Padded structures as one batched :class:`Structure` (leaves ``[B, ...]``; positions in Å).

        Args:
            idx: entry indices (int array, list, slice-free boolean mask) or None for all.
        """
        import jax.numpy as jnp

        _, uniq, inv = self._index(idx)
        with self._maybe_open(_BULK[:6]) as f:
            pos = self._read(f, "positions", uniq, inv)
            num = self._read(f, "numbers", uniq, inv)
            mask = self._read(f, "mask", uniq, inv)
            absorber = self._read(f, "absorber", uniq, inv)
            charge = self._read(f, "charge", uniq, inv)
            spin = self._read(f, "spin", uniq, inv)
        return Structure(
            positions=jnp.asarray(pos, jnp.result_type(float)),
            numbers=jnp.asarray(num, jnp.int32),
            mask=jnp.asarray(mask, bool),
            absorber=jnp.asarray(absorber, jnp.int32),
            charge=jnp.asarray(charge, jnp.int32),
            spin=jnp.asarray(spin, jnp.int32),
        )

    def spectra(self, idx=None) -> np.ndarray:
        """Unconvolved ``mu`` on :attr:`energy`, ``[B, E]`` float32."""
        _, uniq, inv = self._index(idx)
        with self._maybe_open(("mu",)) as f:
            return self._read(f, "mu", uniq, inv)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The simulation's own ``(energy eV, mu)`` of entry ``i`` (empty arrays if not stored)."""
        req, _, _ = self._index([i])
        with self._open() as f:
            return np.asarray(f["raw_energy"][req[0]], np.float64), np.asarray(f["raw_mu"][req[0]], np.float64)

    def provenance(self, i: int) -> dict:
        """The provenance dict of entry ``i``."""
        req, _, _ = self._index([i])
        with self._open() as f:
            return json.loads(_decode(f["provenance"][req[0] : req[0] + 1])[0] or "null")

    def batches(
        self,
        batch_size: int,
        *,
        key=None,
        idx=None,
        shuffle: bool = True,
        drop_remainder: bool = False,
    ) -> Iterator[tuple[Structure, np.ndarray]]:
        """Iterate over ``(Structure batch, mu [B, E])`` pairs.

        Args:
            batch_size: entries per batch.
            key: JAX PRNG key for the shuffle (required when ``shuffle``).
            idx: restrict to these entries (e.g. one split); default all.
            shuffle: permute the order with ``key``.
            drop_remainder: skip the last, smaller batch (keeps shapes static for ``jit``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order, _, _ = self._index(idx)
        self.load()
        if shuffle:
            if key is None:
                raise ValueError("batches(shuffle=True) needs an explicit PRNG key= (jax.random.key(seed))")
            import jax

            order = order[np.asarray(jax.random.permutation(key, order.size))]
        stop = order.size - (order.size % batch_size if drop_remainder else 0)
        for start in range(0, stop, batch_size):
            sel = order[start : start + batch_size]
            yield self.structures(sel), self.spectra(sel)

    @property
    def failures(self) -> list[dict]:
        """Failed entries: ``[{"key", "reason", "provenance"}, ...]``."""
        with self._open() as f:
            keys = _decode(f["failures/key"][()])
            reasons = _decode(f["failures/reason"][: len(keys)])
            provs = _decode(f["failures/provenance"][: len(keys)])
        return [
            {"key": str(k), "reason": str(r), "provenance": json.loads(p) if p else None}
            for k, r, p in zip(keys, reasons, provs, strict=True)
        ]

    def info(self) -> dict:
        """Summary counts: entries per element/edge/recipe, groups, splits, oxidation states, failures."""
        recipe_name = self.recipe.get("name") if isinstance(self.recipe, dict) else None
        reasons = Counter(r["reason"].splitlines()[0][:120] if r["reason"] else "" for r in self.failures)
        with self._open() as f:
            n_atoms = f["mask"][: len(self)].sum(axis=1) if len(self) else np.zeros(0, int)
        return {
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "element": self.element,
            "edge": self.edge,
            "recipe": self.recipe,
            "recipe_name": recipe_name,
            "created_by": self.created_by,
            "n_entries": len(self),
            "n_failures": int(len(self.failure_keys)),
            "failure_reasons": dict(reasons.most_common()),
            "n_max": self.n_max,
            "atoms_per_entry": (
                {"min": int(n_atoms.min()), "median": float(np.median(n_atoms)), "max": int(n_atoms.max())}
                if len(self)
                else None
            ),
            "energy": {
                "min": float(self.energy[0]),
                "max": float(self.energy[-1]),
                "n": int(self.energy.size),
                "step": float(np.median(np.diff(self.energy))),
            },
            "n_groups": int(np.unique(self.groups).size),
            "splits": dict(Counter(self.splits.tolist())),
            "oxidation_states": {str(k): v for k, v in sorted(Counter(self.oxidation_states.tolist()).items())},
            "counts": {f"{self.element}-{self.edge}": len(self)},
        }

    # ------------------------------------------------------------------ writing
    def _validate(self, entry: dict, i: int) -> dict:
        where = f"{self.path}: entry {i}"
        if not isinstance(entry, dict):
            raise TypeError(f"{where}: an entry is a dict, got {type(entry).__name__}")
        missing = [k for k in _ENTRY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        unknown = set(entry) - set(_ENTRY_KEYS) - set(_OPTIONAL_DEFAULTS)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        e = {**_OPTIONAL_DEFAULTS, **entry}
        key = e["key"]
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}: key must be a non-empty string, got {key!r}")
        where = f"{self.path}: entry {key!r}"
        s = e["structure"]
        if not isinstance(s, Structure):
            raise TypeError(f"{where}: structure must be a jxas Structure, got {type(s).__name__}")
        if s.is_batch:
            raise ValueError(f"{where}: structure is a batch; append single structures")
        pos, num, absorber = s.real()
        if pos.shape[0] == 0:
            raise ValueError(f"{where}: empty structure (no real atoms)")
        if not bool(np.asarray(s.mask)[int(s.absorber)]):
            raise ValueError(f"{where}: the absorber index points at a padding slot")
        if not np.all(np.isfinite(pos)):
            raise ValueError(f"{where}: NaN or infinite positions")
        if np.any(num <= 0):
            raise ValueError(f"{where}: real atoms must have atomic numbers >= 1")
        from ase.data import atomic_numbers

        if int(num[absorber]) != atomic_numbers[self.element]:
            from ase.data import chemical_symbols

            raise ValueError(
                f"{where}: absorber is {chemical_symbols[int(num[absorber])]}, this dataset is for {self.element}"
            )
        mu = np.asarray(e["mu"], np.float64)
        if mu.shape != self.energy.shape:
            raise ValueError(f"{where}: mu has shape {mu.shape}, the dataset grid has {self.energy.shape}")
        if not np.all(np.isfinite(mu)):
            raise ValueError(f"{where}: mu contains NaN or infinite values")
        raw_e = np.zeros(0) if e["raw_energy"] is None else np.asarray(e["raw_energy"], np.float64).ravel()
        raw_mu = np.zeros(0) if e["raw_mu"] is None else np.asarray(e["raw_mu"], np.float64).ravel()
        if raw_e.shape != raw_mu.shape:
            raise ValueError(f"{where}: raw_energy {raw_e.shape} and raw_mu {raw_mu.shape} differ in length")
        if not (np.all(np.isfinite(raw_e)) and np.all(np.isfinite(raw_mu))):
            raise ValueError(f"{where}: raw_energy/raw_mu contain NaN or infinite values")
        try:
            prov = to_json(e["provenance"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: provenance is not JSON serialisable ({err})") from None
        return dict(
            positions=pos.astype(np.float32),
            numbers=num.astype(np.int16),
            absorber=int(absorber),
            charge=int(s.charge),
            spin=int(s.spin),
            mu=mu.astype(np.float32),
            raw_energy=raw_e,
            raw_mu=raw_mu,
            key=key,
            group=str(e["group"]),
            split=str(e["split"]),
            oxidation_state=int(e["oxidation_state"]),
            provenance=prov,
        )

    def append(self, entries: Sequence[dict], *, on_duplicate: str = "error") -> int:
        """Append entries (validated first: a bad entry raises before anything is written).

        Args:
            entries: dicts with ``structure`` (:class:`Structure`, padded or not), ``mu`` ([E] on
                :attr:`energy`), ``key`` (unique str) and optionally ``raw_energy``, ``raw_mu``,
                ``group``, ``split``, ``oxidation_state`` (-99 unknown), ``provenance`` (JSON-able).
            on_duplicate: ``"error"`` (raise on a key already stored or repeated) or ``"skip"``.

        Returns:
            The number of entries written.
        """
        if on_duplicate not in ("error", "skip"):
            raise ValueError(f"on_duplicate must be 'error' or 'skip', got {on_duplicate!r}")
        if isinstance(entries, dict):
            entries = [entries]
        self.refresh()
        seen = set(self.keys.tolist())
        rows = []
        for i, entry in enumerate(entries):
            row = self._validate(entry, i)
            if row["key"] in seen:
                if on_duplicate == "skip":
                    continue
                raise ValueError(f"{self.path}: duplicate key {row['key']!r}")
            seen.add(row["key"])
            rows.append(row)
        if not rows:
            return 0
        k = len(rows)
        need = max(max(r["positions"].shape[0] for r in rows), self.n_max)
        with self._open("a") as f:
            n0 = f["key"].shape[0]
            if need > int(f.attrs["n_max"]):
                for name in ("positions", "numbers", "mask"):
                    d = f[name]
                    d.resize(need, axis=1)
                f.attrs["n_max"] = need
            n1 = n0 + k
            pos = np.zeros((k, need, 3), np.float32)
            num = np.zeros((k, need), np.int16)
            mask = np.zeros((k, need), bool)
            for j, r in enumerate(rows):
                m = r["positions"].shape[0]
                pos[j, :m], num[j, :m], mask[j, :m] = r["positions"], r["numbers"], True
            cols: dict[str, Any] = {
                "positions": pos,
                "numbers": num,
                "mask": mask,
                "mu": np.stack([r["mu"] for r in rows]),
            }
            for name in ("absorber", "charge", "spin", "oxidation_state"):
                cols[name] = np.array([r[name] for r in rows])
            for name in ("key", "group", "split", "provenance"):
                cols[name] = np.array([r[name] for r in rows], dtype=object)
            for name in ("raw_energy", "raw_mu"):
                arr = np.empty(k, dtype=object)
                for j, r in enumerate(rows):
                    arr[j] = r[name]
                cols[name] = arr
            # key last: an interrupted append leaves the other columns longer than `key`, which the
            # reader treats as not written (see _load_header / __len__).
            for name in [c for c in cols if c != "key"] + ["key"]:
                d = f[name]
                d.resize(n1, axis=0)
                if d.dtype == _VLEN_F64:  # h5py mis-broadcasts a slice of one empty vlen row
                    for j in range(k):
                        d[n0 + j] = cols[name][j]
                else:
                    d[n0:n1] = cols[name]
            f.flush()
        self.refresh()
        return k

    def append_failure(self, key: str, reason: str, provenance: Any = None) -> None:
        """Record a failed entry (``key`` is then skipped by a resumed generation run)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"{self.path}: failure key must be a non-empty string")
        prov = to_json(provenance)
        with self._open("a") as f:
            g = f["failures"]
            n = g["key"].shape[0]
            for name, val in (("reason", str(reason)), ("provenance", prov), ("key", key)):
                g[name].resize(n + 1, axis=0)
                g[name][n] = val
            f.flush()
        self.refresh()


def write_data_card(
    ds: Dataset,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    sections: dict[str, str] | None = None,
) -> Path:
    """Write a markdown data card next to a dataset: counts, grid, recipe, failures, plus free sections.

    Args:
        ds: the dataset.
        path: the card to write; default the dataset path with ``.md``.
        title: heading; default ``"<element> <edge>-edge dataset <file name>"``.
        sections: extra ``{heading: markdown text}`` (how it was built, how to regenerate, licence).
    """
    info = ds.info()
    path = Path(path) if path is not None else ds.path.with_suffix(".md")
    title = title or f"{ds.element} {ds.edge}-edge dataset `{ds.path.name}`"
    lines = [f"# {title}", ""]
    for head, text in (sections or {}).items():
        lines += [f"## {head}", "", text.strip(), ""]
    apm = info["atoms_per_entry"] or {}
    lines += [
        "## Contents (measured from the file)",
        "",
        f"- file: `{ds.path.name}`, {info['size_bytes'] / 1e6:.1f} MB, format `{FORMAT}` v{FORMAT_VERSION}, "
        f"written by {info['created_by']}",
        f"- entries: {info['n_entries']} in {info['n_groups']} groups; failures recorded: {info['n_failures']}",
        f"- atoms per entry: min {apm.get('min')}, median {apm.get('median')}, max {apm.get('max')} "
        f"(padded to n_max = {info['n_max']})",
        f"- energy grid: {info['energy']['min']:.2f} .. {info['energy']['max']:.2f} eV absolute, "
        f"{info['energy']['n']} points, step {info['energy']['step']:g} eV",
        f"- splits: {info['splits']}",
        f"- absorber oxidation states (-99 = unknown): {info['oxidation_states']}",
    ]
    if info["failure_reasons"]:
        lines += ["", "Failure reasons (first line, count):", ""]
        lines += [f"- {n} x `{r}`" for r, n in list(info["failure_reasons"].items())[:20]]
    lines += [
        "",
        "## Recipe",
        "",
        "```json",
        json.dumps(ds.recipe, indent=2, sort_keys=True),
        "```",
        "",
        "## Loading",
        "",
        "```python",
        "import jax, jxas.data",
        f"ds = jxas.data.Dataset({str(ds.path)!r})",
        "structures, mu = ds.structures(), ds.spectra()   # padded Structure batch, [N, E] on ds.energy",
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
    return path
