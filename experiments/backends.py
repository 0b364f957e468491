"""Where sweep points run: a local process pool (default) or a Ray cluster.

Both backends run :func:`execute_point` on a worker: it pins torch to ``threads`` threads, calls
the point function under the point folder's lock (one writer at a time, see :class:`PointLock`)
and turns any exception into a ``failed`` outcome, so one bad point never stops the others.
Local pool workers end with the sweep driver that started them, so a killed driver leaves no
worker training a point that the next run trains again. A worker that dies (killed, out of memory) makes only the points it was running
fail: the local pool is rebuilt for the rest, and Ray reports the lost task on its own.

The engine keeps at most ``capacity()`` points in flight, so "running" in the progress display is
what really runs, and a crash loses at most that many points (they re-run on the next call).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol


def _pin_threads(threads: int) -> None:
    """One process per core: torch/BLAS thread pools larger than this only fight each other."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    # torch reads OMP_NUM_THREADS when first imported; set it directly only if it is already
    # loaded (importing it here would cost seconds per worker for points that never use it)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def execute_point(
    fn: Callable[..., Mapping[str, Any]],
    point: Any,
    run_dir: str,
    kwargs: Mapping[str, Any],
    threads: int = 1,
) -> dict[str, Any]:
    """Run one point on a worker: ``{"status": "ok", "metrics", "elapsed_s", "host"}`` or
    ``{"status": "failed", "error", "traceback", ...}``. Never raises for an ordinary exception."""
    _pin_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    host = socket.gethostname()
    try:
        with PointLock(run_dir):  # one writer per point folder
            metrics = fn(point, run_dir, **dict(kwargs))
        return {
            "status": "ok",
            "metrics": dict(metrics or {}),
            "elapsed_s": time.perf_counter() - t0,
            # CPU seconds of the worker: on a shared machine a fairer cost than wall time
            "cpu_s": time.process_time() - c0,
            "host": host,
        }
    except Exception as e:  # noqa: BLE001 - failure isolation is the point
        return {
            "status": "failed",
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
            "elapsed_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "host": host,
        }


def _crashed(e: BaseException) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"worker crashed: {type(e).__name__}: {e}",
        "traceback": "".join(traceback.format_exception(e)),
    }


class Backend(Protocol):
    """What the sweep engine needs from an executor."""

    name: str

    def start(self) -> None: ...

    def capacity(self) -> int:
        """How many points may be in flight at once."""
        ...

    def submit(
        self, fn: Callable[..., Any], point: Any, run_dir: str, kwargs: Mapping[str, Any]
    ) -> Any: ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that finished (waits up to ``timeout`` s for one)."""
        ...

    def result(self, handle: Any) -> dict[str, Any]:
        """The outcome of a finished handle (a crash becomes a ``failed`` outcome)."""
        ...

    def close(self, cancel: bool = False) -> None: ...


def _exit_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """In a pool worker: end this process as soon as the sweep driver that started it is gone
    (killed, crashed), so that no orphan keeps training a point the next run will redo.

    Linux delivers SIGKILL at once on the parent's death (``PR_SET_PDEATHSIG``); a daemon thread
    that watches the parent id covers the other systems and a parent thread that exits first.
    """
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _pool_init(threads: int, parent_pid: int | None = None) -> None:
    _pin_threads(threads)
    if parent_pid is not None:
        _exit_with_parent(parent_pid)


def lock_path(run_dir: str | os.PathLike) -> str:
    """The lock file of a point's run folder: ``.<name>.lock`` beside it."""
    head, name = os.path.split(os.path.normpath(run_dir))
    return os.path.join(head, f".{name}.lock")


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (Linux; None elsewhere or if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux /proc; None elsewhere), to tell a live owner
    from a later process that got the same id."""
    stat = _proc_stat(pid)
    return stat[19] if stat and len(stat) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs; an exited process
    that nobody reaped yet (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the signal check is all there is
    if stat[0] in ("Z", "X"):
        return False
    return start is None or len(stat) <= 19 or stat[19] == start


class FolderInUseError(RuntimeError):
    """A run folder already has a live writer (see :class:`PointLock`)."""


class PointLock:
    """One writer per point folder: a lock file beside it holding the owner's host, pid and
    process start time, created with O_EXCL. A lock whose owner is gone (same host, process
    dead or replaced) is stale and taken over; a live owner makes :meth:`acquire` raise
    :class:`FolderInUseError` naming it and the lock file."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = os.fspath(run_dir)
        self.path = lock_path(run_dir)
        self.me = f"{socket.gethostname()} {os.getpid()} {_process_start(os.getpid())}"

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(self.path) as fh:
                        host, pid, start = (fh.read().split() + ["", "", ""])[:3]
                except OSError:
                    continue  # released meanwhile: try again
                if host == socket.gethostname() and pid.isdigit():
                    if not _alive(int(pid), None if start in ("", "None") else start):
                        os.unlink(self.path)  # stale: its owner is gone
                        continue
                raise FolderInUseError(
                    f"run folder {self.run_dir} is being written by process {pid} on {host} "
                    f"(lock file {self.path}; delete it if that process is gone)"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(self.me + "\n")
            return
        raise FolderInUseError(f"could not take the lock {self.path}")  # pragma: no cover

    def release(self) -> None:
        try:
            with open(self.path) as fh:
                mine = fh.read().strip() == self.me
        except OSError:
            return
        if mine:
            os.unlink(self.path)

    def __enter__(self) -> PointLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LocalBackend:
    """A ``ProcessPoolExecutor`` over ``workers`` processes (default: the CPU count).

    Processes are started with ``spawn`` (torch and fork do not mix) and reused across points.
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if int(threads) < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.workers = int(workers or os.cpu_count() or 1)
        self.threads = int(threads)
        self._pool: cf.ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_pool_init,
                initargs=(self.threads, os.getpid()),  # workers end with this process
            )

    def capacity(self) -> int:
        return self.workers

    def submit(
        self, fn: Callable[..., Any], point: Any, run_dir: str, kwargs: Mapping[str, Any]
    ) -> cf.Future:
        self.start()
        assert self._pool is not None
        try:
            return self._pool.submit(execute_point, fn, point, run_dir, kwargs, self.threads)
        except cf.process.BrokenProcessPool:
            # a worker died: the pool is unusable; start a fresh one for the remaining points
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.start()
            return self._pool.submit(execute_point, fn, point, run_dir, kwargs, self.threads)

    def wait(self, handles: Sequence[cf.Future], timeout: float) -> list[cf.Future]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future) -> dict[str, Any]:
        try:
            return handle.result()
        except cf.process.BrokenProcessPool as e:
            return _crashed(e)
        except Exception as e:  # noqa: BLE001 - e.g. an unpicklable point function
            return _crashed(e)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            self._pool = None


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(num_cpus: int, **kwargs: Any) -> None:
    """Start a private single-machine Ray instance whose services listen on 127.0.0.1 only.

    On Linux Ray replaces a loopback ``_node_ip_address`` by the machine's routable address
    (``ray._private.services.resolve_ip_for_localhost``), so that argument alone does not keep
    the GCS and raylets off the network. Ray's own switch for single-machine use (the one it
    applies on macOS/Windows) does: with clusters disabled the node address is 127.0.0.1 and
    every service binds there. It is read when ray is imported, so it is set for the start and
    restored afterwards (a later ``ray.init(address=...)`` in this process is unaffected).
    """
    import ray
    from ray._private import ray_constants

    old_env = os.environ.get(LOOPBACK_ENV)
    old_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    os.environ[LOOPBACK_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            **kwargs,
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(LOOPBACK_ENV, None)
        else:
            os.environ[LOOPBACK_ENV] = old_env


class RayBackend:
    """Points as Ray tasks (``num_cpus=threads`` each).

    address: an existing cluster (``"ray://head:10001"``, ``"head:6379"`` or ``"auto"``);
        None starts a local cluster for the sweep with ``workers`` CPUs (default: the CPU
        count), listening on 127.0.0.1 only (:func:`start_local_ray`), without the dashboard,
        and shuts it down afterwards.
    If Ray is already initialised in this process (e.g. by the caller), it is used as is and
    left running.
    Run folders are written by the workers: on a multi-machine cluster the sweep folder must
    be on a filesystem every node shares (or pass an absolute path on such a mount).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int = 1):
        try:
            import ray  # noqa: F401
        except ImportError as e:  # pragma: no cover - ray is an optional dependency
            raise ValueError(
                "backend='ray' needs Ray: pip install 'multitask-evidence[ray]'"
            ) from e
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.address = address
        self.threads = int(threads)
        self._owns = False
        self._remote: Any = None
        self._capacity = 1
        self._pending: set[Any] = set()

    def start(self) -> None:
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                start_local_ray(int(self.workers or os.cpu_count() or 1))
                self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._capacity = max(1, cpus // self.threads)
        if self.workers and self.address:
            self._capacity = min(self._capacity, int(self.workers))
        # max_retries=0: a point that fails is recorded, not silently re-run
        self._remote = ray.remote(num_cpus=self.threads, max_retries=0)(execute_point)

    def capacity(self) -> int:
        return self._capacity

    def submit(
        self, fn: Callable[..., Any], point: Any, run_dir: str, kwargs: Mapping[str, Any]
    ) -> Any:
        ref = self._remote.remote(fn, point, run_dir, dict(kwargs), self.threads)
        self._pending.add(ref)
        return ref

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        import ray

        done, _ = ray.wait(list(handles), num_returns=1, timeout=timeout)
        if done:  # collect everything else that is already finished too
            more, _ = ray.wait(list(handles), num_returns=len(handles), timeout=0)
            done = list(dict.fromkeys([*done, *more]))
        return done

    def result(self, handle: Any) -> dict[str, Any]:
        import ray

        self._pending.discard(handle)
        try:
            return ray.get(handle)
        except Exception as e:  # noqa: BLE001 - WorkerCrashedError, RayTaskError, ...
            return _crashed(e)

    def close(self, cancel: bool = False) -> None:
        import ray

        if cancel and ray.is_initialized():
            # on an existing cluster, interrupted sweeps must not leave their points running
            for ref in self._pending:
                ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns and ray.is_initialized():
            ray.shutdown()
            self._owns = False


def make_backend(
    backend: Any, *, workers: int | None = None, address: str | None = None, threads: int = 1
) -> Any:
    """``"local"`` / ``"ray"`` / a backend instance -> a backend instance."""
    if not isinstance(backend, str):
        return backend
    if backend == "local":
        if address:
            raise ValueError("address is only used with backend='ray'")
        return LocalBackend(workers=workers, threads=threads)
    if backend == "ray":
        return RayBackend(workers=workers, address=address, threads=threads)
    raise ValueError(f"backend must be one of ['local', 'ray'], got {backend!r}")
