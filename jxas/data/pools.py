"""Worker pools of the generation runner: long-lived spawned processes, or a Dask cluster.

Both pools have one interface: ``idle()``, ``busy()``, ``submit(slot, key, spec)``, ``poll(wait_s) ->
events`` (``("result", key, spec, result)``, ``("died", key, spec, why)``, ``("timeout", key, spec, s)``)
and ``close()``. A task is ``worker(spec, recipe) -> entry`` run by :func:`_run_task`, which never
raises: a failure comes back with its reason.

In the process pool every worker is a long-lived process (spawned, so JAX/FEFF state is clean) that
dies with the parent (``PR_SET_PDEATHSIG``); a task running past ``timeout`` has its worker's whole
process tree killed; a worker that dies is reported so the runner can retry its task on a fresh one.
On Dask a running task cannot be killed, so a timeout is reported and the task abandoned (FEFF's own
timeout inside :func:`jxas.data.simulate_feff` bounds it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np


def _to_host(entry: dict) -> dict:
    """Entry with NumPy leaves only (JAX arrays would drag device buffers through pickle)."""
    out = dict(entry)
    s = entry.get("structure")
    if s is not None and hasattr(s, "positions"):
        out["structure"] = dataclasses.replace(
            s, **{f.name: np.asarray(getattr(s, f.name)) for f in dataclasses.fields(s)}
        )
    for k in ("mu", "raw_energy", "raw_mu"):
        if entry.get(k) is not None:
            out[k] = np.asarray(entry[k])
    return out


def _run_task(worker: Callable, spec: dict, recipe: Any) -> tuple:
    """Run one task; never raises: ``("ok", entry, seconds)`` or ``("fail", reason, seconds)``."""
    t0 = time.perf_counter()
    try:
        entry = _to_host(worker(spec, recipe))
        return ("ok", entry, time.perf_counter() - t0, socket.gethostname(), os.getpid())
    except Exception as e:  # noqa: BLE001 - every failure is recorded with its reason, not raised
        tb = traceback.format_exc(limit=6)
        reason = f"{type(e).__name__}: {e}\n{tb}"
        return ("fail", reason, time.perf_counter() - t0, socket.gethostname(), os.getpid())


def _set_pdeathsig() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so a killed run leaves no workers."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass


def _worker_main(conn, worker: Callable, recipe: Any, parent_pid: int) -> None:
    _set_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    try:
        conn.send(("ready",))  # imports are done: the parent starts the task clock from here
    except (BrokenPipeError, OSError):
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        key, spec = msg
        result = _run_task(worker, spec, recipe)
        try:
            conn.send((key,) + result)
        except (BrokenPipeError, OSError):
            return


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (FEFF stages run in grandchild processes)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = proc.children(recursive=True) + [proc]
    except Exception:  # noqa: BLE001 - psutil missing or process already gone
        procs = []
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()


class _ProcessPool:
    """N long-lived spawned workers, one task each at a time, with per-task deadlines.

    A task's clock starts when its worker reports ready (spawning and importing can take seconds on
    a busy machine and is not the task's fault); a worker that is not ready within ``startup_s`` is
    treated as dead.
    """

    def __init__(self, n: int, worker: Callable, recipe: Any, timeout: float, startup_s: float = 300.0):
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")
        self.n, self.worker, self.recipe, self.timeout, self.startup_s = n, worker, recipe, timeout, startup_s
        self.slots: list[dict | None] = [None] * n

    def _start(self, i: int) -> dict:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=_worker_main,
            args=(child, self.worker, self.recipe, os.getpid()),
            name=f"jxas-generate-{i}",
            daemon=True,
        )
        proc.start()
        child.close()
        slot = {"proc": proc, "conn": parent, "task": None, "t0": None, "ready": False, "born": time.monotonic()}
        self.slots[i] = slot
        return slot

    def idle(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s is None or s["task"] is None]

    def busy(self) -> int:
        return sum(1 for s in self.slots if s is not None and s["task"] is not None)

    def submit(self, i: int, key: str, spec: dict) -> None:
        slot = self.slots[i]
        if slot is None or not slot["proc"].is_alive():
            if slot is not None:
                self._drop(i)
            slot = self._start(i)
        slot["conn"].send((key, spec))  # buffered in the pipe until the worker is ready
        slot["task"] = (key, spec)
        slot["t0"] = time.monotonic() if slot["ready"] else None

    def _drop(self, i: int) -> None:
        slot = self.slots[i]
        if slot is not None:
            _kill_tree(slot["proc"].pid)
            slot["proc"].join(timeout=5)
            slot["conn"].close()
        self.slots[i] = None

    def _deadline(self, s: dict) -> float:
        return s["t0"] + self.timeout if s["t0"] is not None else s["born"] + self.startup_s

    def poll(self, wait_s: float) -> list[tuple]:
        """Wait up to ``wait_s``; return events ``("result", key, spec, result)``, ``("died", key, spec,
        exit code)`` and ``("timeout", key, spec, seconds)``."""
        from multiprocessing.connection import wait

        live = [s for s in self.slots if s is not None and s["task"] is not None]
        if not live:
            time.sleep(min(wait_s, 0.05))
            return []
        nearest = min(self._deadline(s) for s in live) - time.monotonic()
        handles = [s["conn"] for s in live] + [s["proc"].sentinel for s in live]
        wait(handles, timeout=max(0.0, min(wait_s, nearest)))
        events = []
        for i, s in enumerate(self.slots):
            if s is None or s["task"] is None:
                continue
            key, spec = s["task"]
            got = None
            try:
                while got is None and s["conn"].poll():
                    msg = s["conn"].recv()
                    if msg == ("ready",):
                        s["ready"], s["t0"] = True, time.monotonic()
                    else:
                        got = msg
            except (EOFError, OSError):
                got = None
            now = time.monotonic()
            if got is not None:
                s["task"] = None
                events.append(("result", key, spec, got[1:]))
            elif not s["proc"].is_alive():
                code = s["proc"].exitcode
                self._drop(i)
                events.append(("died", key, spec, f"exit code {code}"))
            elif now > self._deadline(s):
                t0 = s["t0"]
                self._drop(i)
                if t0 is not None:
                    events.append(("timeout", key, spec, now - t0))
                else:
                    events.append(("died", key, spec, f"not ready within {self.startup_s:g} s of starting"))
        return events

    def close(self) -> None:
        for i, s in enumerate(self.slots):
            if s is None:
                continue
            if s["task"] is None:
                with contextlib.suppress(Exception):
                    s["conn"].send(None)
                s["proc"].join(timeout=2)
            if s["proc"].is_alive():
                _kill_tree(s["proc"].pid)
                s["proc"].join(timeout=5)
            s["conn"].close()
            self.slots[i] = None


class _DaskPool:
    """Same interface on a Dask cluster (``scheduler`` = address or ``"local"``)."""

    def __init__(self, n: int, worker: Callable, recipe: Any, timeout: float, scheduler: str):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler, timeout="30s")
        self.n = max(1, sum(self.client.nthreads().values())) if scheduler != "local" else n
        self.worker, self.recipe, self.timeout = worker, recipe, timeout
        self.futures: dict = {}  # future -> (key, spec, t0)
        # a list, so that a dict recipe is scattered as one object rather than as a mapping of keys
        self._recipe_future = self.client.scatter([recipe], broadcast=True)[0] if recipe is not None else None

    def idle(self) -> list[int]:
        return list(range(self.n - len(self.futures)))

    def busy(self) -> int:
        return len(self.futures)

    def submit(self, i: int, key: str, spec: dict) -> None:
        tag = hashlib.sha1(key.encode()).hexdigest()[:16]
        fut = self.client.submit(
            _run_task, self.worker, spec, self._recipe_future, pure=False, key=f"jxas-{tag}-{time.time_ns()}"
        )
        self.futures[fut] = (key, spec, time.monotonic())

    def poll(self, wait_s: float) -> list[tuple]:
        from distributed import wait

        if not self.futures:
            time.sleep(min(wait_s, 0.05))
            return []
        now = time.monotonic()
        nearest = min(t0 + self.timeout for _, _, t0 in self.futures.values()) - now
        with contextlib.suppress(Exception):
            wait(list(self.futures), timeout=max(0.01, min(wait_s, nearest)), return_when="FIRST_COMPLETED")
        events = []
        now = time.monotonic()
        for fut, (key, spec, t0) in list(self.futures.items()):
            if fut.done():
                del self.futures[fut]
                if fut.status == "finished":
                    events.append(("result", key, spec, fut.result()))
                else:
                    try:
                        exc = fut.exception()
                    except Exception as e:  # noqa: BLE001
                        exc = e
                    events.append(("died", key, spec, f"dask task {fut.status}: {type(exc).__name__}: {exc}"))
            elif now - t0 > self.timeout:
                del self.futures[fut]
                fut.cancel()
                events.append(("timeout", key, spec, now - t0))
        return events

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(list(self.futures))
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
