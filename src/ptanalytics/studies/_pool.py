"""Running a study's tasks in parallel: local processes (the default) or a Dask cluster.

One home for how the studies (:mod:`ptanalytics.studies.power`,
:mod:`ptanalytics.studies.causal_recovery`) spread work over cores: worker processes are spawned
with one BLAS thread each (the workers already use every core), and results come back in task
order, so that a study's output never depends on the number of workers or on which finished
first.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ptanalytics._checks import check_option
from ptanalytics.exceptions import ConfigError

__all__ = ["BACKENDS", "connect", "run_tasks", "single_thread_blas"]

#: Where tasks run: ``processes`` (local worker processes; one task at a time in this process
#: with ``workers=1``) or ``dask`` (a Dask cluster: a ``distributed.Client`` passed as
#: ``client``, or a ``LocalCluster`` of ``workers`` processes started for the run).
BACKENDS = ("processes", "dask")

_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_thread_blas():
    """Processes started inside see one BLAS thread (the environment is restored after).

    Two-thread BLAS in each of two workers on two cores took the causal recovery from 2.6 to
    5.9 s per replication. The variables must be set before a worker imports numpy, so the
    workers are spawned, not forked."""
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    os.environ.update(dict.fromkeys(_BLAS_THREADS, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def progress_line(label: str, done: int, total: int, start: float) -> None:
    """One progress line on stderr, rewritten in place: a bar, the count, seconds so far and
    the seconds left at this pace."""
    elapsed = time.perf_counter() - start
    eta = elapsed / done * (total - done)
    bar = "#" * int(30 * done / total)
    print(
        f"\r{label} [{bar:<30}] {done}/{total}  {elapsed:5.0f} s, ~{eta:4.0f} s left",
        end="",
        file=sys.stderr,
        flush=True,
    )


def run_tasks(
    fn: Callable,
    tasks: Sequence,
    *,
    workers: int | None = None,
    backend: str = "processes",
    client=None,
    label: str = "",
    progress: bool = False,
) -> list:
    """``[fn(task) for task in tasks]``, computed in parallel, in task order.

    ``fn`` must be a module-level function (it is pickled to the workers). ``workers``: local
    processes (default: every core); with ``backend="dask"`` and no ``client``, the workers of
    the ``LocalCluster`` started (and closed) for the run. ``progress`` prints a line on stderr
    as tasks finish.
    """
    backend = check_option("backend", backend, BACKENDS)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise ConfigError(f"workers={workers!r}; allowed: a whole number >= 1, or None.")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers!r}; allowed: a whole number >= 1, or None.")
    if client is not None and backend != "dask":
        raise ConfigError("client= is a Dask client: pass it with backend='dask'.")
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    results: list = [None] * len(tasks)

    def done(count: int) -> None:
        if progress:
            progress_line(label, count, len(tasks), start)

    if backend == "dask":
        results = _run_dask(fn, tasks, workers, client, done)
    elif workers == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            results[i] = fn(task)
            done(i + 1)
    else:
        context = multiprocessing.get_context("spawn")
        try:
            with single_thread_blas(), ProcessPoolExecutor(workers, mp_context=context) as pool:
                for i, result in enumerate(pool.map(fn, tasks), start=1):
                    results[i - 1] = result
                    done(i)
        except BrokenProcessPool:
            raise ConfigError(
                "the worker processes stopped before finishing (each worker starts a fresh "
                "Python that imports the calling script: a script must run its study under "
                "if __name__ == '__main__':, and the machine must have memory for the "
                "workers). Fix: add that guard, or pass workers=1 (--workers 1)."
            ) from None
    if progress and tasks:
        print(file=sys.stderr)
    return results


def _distributed():
    """Dask's ``distributed`` module, or a ConfigError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "the Dask backend needs Dask's distributed scheduler. Fix: pip install "
            "'ptanalytics[dask]' (or dask[distributed])."
        ) from None
    return distributed


def connect(address: str, timeout: str = "10s"):
    """A ``distributed.Client`` of the running Dask scheduler at ``address``
    (``tcp://host:8786``); a ConfigError when none answers within ``timeout``. Close it after
    the run."""
    dist = _distributed()
    try:
        return dist.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"no Dask scheduler answered at {address!r} within {timeout} ({type(exc).__name__}). "
            "Fix: start one there (dask scheduler), check the address, or drop --scheduler to "
            "start a local cluster."
        ) from None


def _run_dask(fn, tasks, workers: int, client, done) -> list:
    """The tasks on a Dask cluster (``client``, or a ``LocalCluster`` started for the run)."""
    dist = _distributed()
    Client, LocalCluster, as_completed = dist.Client, dist.LocalCluster, dist.as_completed
    own = None
    if client is None:
        with single_thread_blas():
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        own = client = Client(cluster)
    try:
        futures = client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(tasks)
        for count, future in enumerate(as_completed(futures), start=1):
            results[index[future.key]] = future.result()
            done(count)
        return results
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            cluster.close()
