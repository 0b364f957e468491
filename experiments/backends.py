"""Where sweep points run: a local process pool (default), a Ray cluster or a SLURM queue.

Every backend runs :func:`run_unit` on a worker for each unit of work: a point
(:func:`execute_point`: it pins torch to ``threads`` threads, calls the point function under the
point folder's lock (one writer at a time, see :class:`PointLock`) and turns any exception into a
``failed`` outcome, so one bad point never stops the others) or an ensemble of compatible
supervised points (:func:`execute_group`: every member's lock, one outcome per member, the
members retried one by one if the ensemble fails).
Local pool workers end with the sweep driver that started them, so a killed driver leaves no
worker training a point that the next run trains again. A worker that dies (killed, out of memory) makes only the points it was running
fail: the local pool is rebuilt for the rest, Ray reports the lost task on its own, and a SLURM
job that ends without a result (time limit, out of memory, node failure, cancelled) is a failed
point whose stale lock the driver removes.

The engine keeps at most ``capacity()`` points in flight, so "running" in the progress display is
what really runs, and a crash loses at most that many points (they re-run on the next call).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import inspect
import math
import multiprocessing as mp
import os
import re
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from multitask_evidence.common.validate import check_int


def _pin_threads(threads: int) -> None:
    """One process per core: torch/BLAS thread pools larger than this only fight each other."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    # torch reads OMP_NUM_THREADS when first imported; set it directly only if it is already
    # loaded (importing it here would cost seconds per worker for points that never use it)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def measured(
    call: Callable[[], Mapping[str, Any] | None], shared_s: float = 0.0, shared_cpu_s: float = 0.0
) -> dict[str, Any]:
    """Run ``call()`` and describe it as an outcome: ``{"status": "ok", "metrics", "elapsed_s",
    "cpu_s", "host"}`` or ``{"status": "failed", "error", "traceback", ...}``; never raises for
    an ordinary exception. shared_s / shared_cpu_s: seconds spent for this point before the call
    (its share of an ensemble's training), added to its wall and CPU times."""
    t0, c0 = time.perf_counter(), time.process_time()
    host = socket.gethostname()
    try:
        metrics = call()
        return {
            "status": "ok",
            "metrics": dict(metrics or {}),
            "elapsed_s": shared_s + time.perf_counter() - t0,
            # CPU seconds of the worker: on a shared machine a fairer cost than wall time
            "cpu_s": shared_cpu_s + time.process_time() - c0,
            "host": host,
        }
    except Exception as e:  # noqa: BLE001 - failure isolation is the point
        return {
            "status": "failed",
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
            "elapsed_s": shared_s + time.perf_counter() - t0,
            "cpu_s": shared_cpu_s + time.process_time() - c0,
            "host": host,
        }


def execute_point(
    fn: Callable[..., Mapping[str, Any]],
    point: Any,
    run_dir: str,
    kwargs: Mapping[str, Any],
    threads: int = 1,
    owner: str | None = None,
) -> dict[str, Any]:
    """Run one point on a worker: ``{"status": "ok", "metrics", "elapsed_s", "host"}`` or
    ``{"status": "failed", "error", "traceback", ...}``. Never raises for an ordinary exception.

    owner: a tag written into the point's lock file beside host and pid (a SLURM job's
    ``job:<id>``), so that the driver can tell the lock of a job that died from anyone else's."""
    _pin_threads(threads)

    def call() -> Mapping[str, Any]:
        with PointLock(run_dir, owner=owner):  # one writer per point folder
            return fn(point, run_dir, **dict(kwargs))

    return measured(call)


def execute_group(
    fn: Callable[..., Sequence[Mapping[str, Any]]],
    points: Sequence[Any],
    run_dirs: Sequence[str],
    kwargs: Mapping[str, Any],
    threads: int = 1,
    owner: str | None = None,
) -> list[dict[str, Any]]:
    """Run a group of points (an ensemble) on a worker as one unit: one outcome per point, in
    order, each in :func:`execute_point`'s format. Never raises for an ordinary exception.

    Takes every member's :class:`PointLock` (a member whose folder has another live writer
    fails alone with that error, the rest go on), then calls ``fn(points, run_dirs, **kwargs)``
    on the members it holds; ``fn`` returns one outcome per member
    (:func:`experiments.point.run_group`: train the ensemble, then probe each member). An
    exception out of ``fn`` itself fails every member it was given. owner: as
    :func:`execute_point`."""
    _pin_threads(threads)
    host = socket.gethostname()
    outcomes: list[dict[str, Any] | None] = [None] * len(points)
    held: list[int] = []
    locks: list[PointLock] = []
    try:
        for i, run_dir in enumerate(run_dirs):
            lock = PointLock(run_dir, owner=owner)
            try:
                lock.acquire()
            except Exception as e:  # noqa: BLE001 - this member fails, the others train
                outcomes[i] = measured(partial(_reraise, e))
                continue
            held.append(i)
            locks.append(lock)
        if held:
            try:
                results = list(
                    fn([points[i] for i in held], [run_dirs[i] for i in held], **dict(kwargs))
                )
                if len(results) != len(held):
                    raise RuntimeError(
                        f"the group function gave {len(results)} outcomes for {len(held)} points"
                    )
            except Exception as e:  # noqa: BLE001 - every member it was given fails with it
                results = [measured(partial(_reraise, e))] * len(held)
            for i, r in zip(held, results):
                outcomes[i] = {**r, "host": host}
    finally:
        for lock in locks:
            lock.release()
    return [o for o in outcomes if o is not None]


def _reraise(e: BaseException) -> None:
    raise e


def run_unit(
    fn: Callable[..., Any],
    point: Any,
    run_dir: str | Sequence[str],
    kwargs: Mapping[str, Any],
    threads: int = 1,
    owner: str | None = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """What every backend runs on a worker for one unit of work: :func:`execute_group` when
    ``run_dir`` is a list of folders (``point`` then the list of points of an ensemble),
    :func:`execute_point` for one folder."""
    if isinstance(run_dir, (list, tuple)):
        return execute_group(fn, point, run_dir, kwargs, threads, owner)
    return execute_point(fn, point, run_dir, kwargs, threads, owner)


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
        self, fn: Callable[..., Any], point: Any, run_dir: Any, kwargs: Mapping[str, Any]
    ) -> Any:
        """Run :func:`run_unit` ``(fn, point, run_dir, kwargs, threads)`` on a worker: one point
        (``run_dir`` a folder) or an ensemble (``point`` and ``run_dir`` lists)."""
        ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that finished (waits up to ``timeout`` s for one)."""
        ...

    def result(self, handle: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """The outcome of a finished handle: a dict for a point, a list (one per member) for an
        ensemble; a crash becomes one ``failed`` outcome (a dict) either way."""
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


# Taking over a stale lock must be atomic: two contenders that both read the same stale lock
# must not both replace it (the second would delete the first one's fresh lock). Each take-over
# first claims a marker file whose name is derived from the stale lock's identity (content,
# inode, modification time), created atomically so that exactly one contender gets it; only
# the holder may replace the lock. Plain files only (no fcntl/flock), so that it holds on
# storage shared between nodes.
_TAKEOVER_GENERATIONS = 8  # take-overs of one stale lock that may die midway before giving up
_TAKEOVER_POLLS = 20  # a contender that lost the marker waits this many polls ...
_TAKEOVER_POLL_S = 0.05  # ... of this many seconds for the winner to finish


def _before_takeover() -> None:
    """Runs between finding a lock stale and taking it over; does nothing. (Tests widen this
    gap to pit two contenders against each other.)"""


def _lock_identity(path: str) -> tuple[list[str], str] | None:
    """The fields of the lock file at ``path`` and its identity, or None if there is none.

    The identity digests the content together with the inode and the modification time read
    from the same open file, so two reads give the same identity only if they saw the same
    file, unchanged. A stale lock's owner is gone and never writes again, and no live process
    can write a dead one's content, so once a stale lock is replaced its identity never comes
    back."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
            st = os.fstat(fh.fileno())
    except OSError:
        return None
    digest = hashlib.sha1(data + f"\0{st.st_ino}\0{st.st_mtime_ns}".encode()).hexdigest()
    return data.decode(errors="replace").split(), digest[:16]


def _gone_here(fields: list[str]) -> bool:
    """Whether the process named by ``host pid start ...`` fields ran on this host and is gone.
    A process on another host cannot be checked and counts as live, as does an empty record
    (one still being written)."""
    host, pid, start = (fields + ["", "", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not _alive(int(pid), None if start in ("", "None") else start)


def _read_fields(path: str) -> list[str] | None:
    """The whitespace-separated fields of a small file, or None if it is gone."""
    try:
        with open(path) as fh:
            return fh.read().split()
    except OSError:
        return None


def _claim(path: str, me: str) -> bool:
    """Create the file ``path`` holding ``me``; False if it already exists.

    The record is written to a private file first and hard-linked to ``path`` (``link`` fails
    if the name exists), so nobody ever reads a half-written claim. Over NFS a ``link`` whose
    reply got lost reports failure although it was made: a link count of 2 on the private file
    says it was. On a file system without hard links the claim is an O_EXCL create, and a
    reader that finds it still empty treats it as live (so a claim whose writer dies between
    the create and the write blocks that take-over until the marker is deleted by hand)."""
    private = f"{path}.{os.urandom(8).hex()}"
    with open(private, "x") as fh:
        fh.write(me + "\n")
    try:
        os.link(private, path)
        return True
    except FileExistsError:
        return os.stat(private).st_nlink == 2
    except OSError:  # no hard links here
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as out:
            out.write(me + "\n")
        return True
    finally:
        os.unlink(private)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class PointLock:
    """One writer per point folder: a lock file beside it holding the owner's host, pid and
    process start time (and an ``owner`` tag such as a SLURM job id, when given), created with
    O_EXCL. A lock whose owner is gone (same host, process dead or replaced) is stale and taken
    over; a live owner makes :meth:`acquire` raise :class:`FolderInUseError` naming it and the
    lock file.

    Taking over is atomic (see :meth:`_take_over`): of several contenders that find the same
    stale lock, exactly one replaces it and the others then find its live lock."""

    def __init__(self, run_dir: str | os.PathLike, owner: str | None = None) -> None:
        if owner is not None and (not owner or any(c.isspace() for c in owner)):
            raise ValueError(f"lock owner tag must be one word, got {owner!r}")
        self.run_dir = os.fspath(run_dir)
        self.path = lock_path(run_dir)
        self.me = f"{socket.gethostname()} {os.getpid()} {_process_start(os.getpid())}"
        if owner is not None:
            self.me += f" {owner}"

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        for _ in range(5):
            fd = self._create()
            if fd is None:
                seen = _lock_identity(self.path)
                if seen is None:
                    continue  # released meanwhile: try again
                fields, identity = seen
                if not _gone_here(fields):
                    host, pid = (fields + ["", ""])[:2]
                    raise FolderInUseError(
                        f"run folder {self.run_dir} is being written by process {pid} on {host} "
                        f"(lock file {self.path}; delete it if that process is gone)"
                    )
                _before_takeover()
                fd = self._take_over(identity)  # stale: its owner is gone
                if fd is None:
                    continue  # the lock changed meanwhile: look again
            with os.fdopen(fd, "w") as fh:
                fh.write(self.me + "\n")
            return
        raise FolderInUseError(f"could not take the lock {self.path}")  # pragma: no cover

    def _create(self) -> int | None:
        """The lock file, newly created (O_EXCL), or None if it exists."""
        try:
            return os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None

    def _take_over(self, identity: str) -> int | None:
        """Replace the stale lock of identity ``identity`` by a new one of ours (returned as
        an open file), or None if the lock changed meanwhile and should be looked at again.

        Only the contender that claims the take-over marker for this identity may replace the
        lock; it checks the lock still has that identity before removing it, so a contender
        that read the stale lock long ago cannot remove a lock taken since. A contender that
        finds the marker held by a live process waits for it to finish (then the caller finds
        the new lock) and raises :class:`FolderInUseError` if it does not in time.

        A take-over that dies midway leaves its marker behind; the next contender finds the
        marker's writer gone and claims the next generation of the marker (``-1``, ``-2``, ...)
        instead of deleting it: deleting a marker while the stale lock stands could let two
        contenders claim the same name, one of them past the other's check. Markers are
        removed only by their own writer or, once the stale lock is gone, by a holder. A
        take-over that dies between removing the stale lock and removing its markers leaves
        ``.takeover-*`` files beside the lock, which are then harmless and may be deleted."""
        walked: list[str] = []  # markers of earlier take-overs that died midway
        for generation in range(_TAKEOVER_GENERATIONS):
            marker = f"{self.path}.takeover-{identity}-{generation}"
            if _claim(marker, self.me):
                break
            holder = _read_fields(marker)
            if holder is None:
                return None  # removed meanwhile, so the stale lock is gone: look again
            if not _gone_here(holder):
                self._await_takeover(identity, marker, holder)
                return None
            walked.append(marker)
        else:
            raise FolderInUseError(
                f"could not take over the stale lock {self.path}: {_TAKEOVER_GENERATIONS} "
                f"earlier take-overs of it died midway (delete it and its .takeover-* files)"
            )
        replaced = False
        try:
            seen = _lock_identity(self.path)
            replaced = seen is None or seen[1] != identity
            if replaced:
                return None  # taken over or released meanwhile
            _unlink_quietly(self.path)
            replaced = True
            return self._create()
        finally:
            _unlink_quietly(marker)
            if replaced:  # the stale lock is gone for good: its markers guard nothing now
                for dead in walked:
                    _unlink_quietly(dead)

    def _await_takeover(self, identity: str, marker: str, holder: list[str]) -> None:
        """Wait for the live contender holding ``marker`` to replace the stale lock (or to give
        up or die); raise :class:`FolderInUseError` naming it if it takes too long."""
        for _ in range(_TAKEOVER_POLLS):
            time.sleep(_TAKEOVER_POLL_S)
            seen = _lock_identity(self.path)
            now = _read_fields(marker)
            if seen is None or seen[1] != identity or now != holder or _gone_here(holder):
                return
        host, pid = (holder + ["", ""])[:2]
        raise FolderInUseError(
            f"run folder {self.run_dir} is being written by process {pid} on {host}, which is "
            f"taking over the stale lock file {self.path} (marker {marker})"
        )

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


def release_lock_of(run_dir: str | os.PathLike, owner: str) -> bool:
    """Remove the lock of ``run_dir`` if it was taken with the ``owner`` tag (a job known to
    have ended, on whatever host it ran); True if a lock was removed. A lock held by anyone
    else is left alone."""
    path = lock_path(run_dir)
    try:
        with open(path) as fh:
            fields = fh.read().split()
    except OSError:
        return False
    if len(fields) >= 4 and fields[3] == owner:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
    return False


class LocalBackend:
    """A ``ProcessPoolExecutor`` over ``workers`` processes (default: the CPU count).

    Processes are started with ``spawn`` (torch and fork do not mix) and reused across points.
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        check_int("workers", workers, 1, allow_none=True)
        check_int("threads", threads, 1)
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
        self, fn: Callable[..., Any], point: Any, run_dir: Any, kwargs: Mapping[str, Any]
    ) -> cf.Future:
        self.start()
        assert self._pool is not None
        try:
            return self._pool.submit(run_unit, fn, point, run_dir, kwargs, self.threads)
        except cf.process.BrokenProcessPool:
            # a worker died: the pool is unusable; start a fresh one for the remaining points
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.start()
            return self._pool.submit(run_unit, fn, point, run_dir, kwargs, self.threads)

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
        check_int("workers", workers, 1, allow_none=True)
        check_int("threads", threads, 1)
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
        self._remote = ray.remote(num_cpus=self.threads, max_retries=0)(run_unit)

    def capacity(self) -> int:
        return self._capacity

    def submit(
        self, fn: Callable[..., Any], point: Any, run_dir: Any, kwargs: Mapping[str, Any]
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


# ----------------------------------------------------------------------------------------------
# SLURM, through submitit
# ----------------------------------------------------------------------------------------------

_SLURM_WORD = re.compile(r"^[A-Za-z0-9_.,:+=@%/-]+$")
_SLURM_TIME = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
    r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$"
)
# sbatch options the backend sets itself (from its own arguments) or that would break a job
_SBATCH_OWN = {
    "partition": "partition",
    "time": "time",
    "cpus-per-task": "threads",
    "cpus_per_task": "threads",
    "mem": "mem",
    "account": "account",
    "qos": "qos",
    "job-name": "",
    "job_name": "",
    "output": "",
    "error": "",
    "array": "",
    "ntasks": "",
    "nodes": "",
}


def parse_slurm_time(value: Any) -> int:
    """A SLURM time limit in whole minutes (rounded up): an integer number of minutes, or one of
    sbatch's forms ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``."""
    if isinstance(value, bool):
        raise ValueError(f"slurm time must be minutes or [D-]HH:MM:SS, got {value!r}")
    if isinstance(value, int):
        minutes, seconds = value, 0
    else:
        m = _SLURM_TIME.match(str(value).strip())
        if m is None:
            raise ValueError(
                f"slurm time must be minutes or one of MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
                f"D-HH:MM:SS, got {value!r}"
            )
        g = {k: int(v) if v is not None else 0 for k, v in m.groupdict().items()}
        if m.group("days") is not None:
            minutes = g["days"] * 1440 + g["dh"] * 60 + g["dm"]
            seconds = g["ds"]
        elif m.group("c") is not None:
            minutes, seconds = g["a"] * 60 + g["b"], g["c"]
        else:
            minutes, seconds = g["a"], g["b"]
    total = minutes + (seconds + 59) // 60
    if total < 1:
        raise ValueError(f"slurm time must be at least one minute, got {value!r}")
    return total


def parse_slurm_mem(value: Any) -> str:
    """Memory per job for sbatch ``--mem``: ``512M``, ``8G``, ``1T`` (``GB``/``MB`` too) or a
    number of gigabytes; returned in megabytes as ``<n>M``."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    if isinstance(value, bool):
        raise ValueError(f"slurm memory must be like 512M, 8G or a number of GB, got {value!r}")
    if isinstance(value, (int, float)):
        mb = float(value) * 1024
    else:
        m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])?B?\s*$", str(value), re.IGNORECASE)
        if m is None:
            raise ValueError(f"slurm memory must be like 512M, 8G or a number of GB, got {value!r}")
        mb = float(m.group(1)) * units[(m.group(2) or "G").upper()]
    if not math.isfinite(mb) or mb < 1:
        raise ValueError(f"slurm memory must be at least 1M, got {value!r}")
    return f"{math.ceil(mb)}M"


def parse_sbatch_args(items: Any) -> dict[str, str]:
    """Extra sbatch options: ``KEY=VALUE`` strings (``constraint=cpu``, ``gres=gpu:1``,
    ``--exclude=node3``) or a mapping; a bare ``KEY`` is a flag (``exclusive``). Options the
    backend sets from its own arguments (partition, time, cpus-per-task, mem, account, qos) or
    that it must control (job name, output files, array, ntasks, nodes) are refused."""
    if items is None:
        return {}
    pairs = list(items.items()) if isinstance(items, Mapping) else None
    if pairs is None:
        if isinstance(items, str):
            items = [items]
        pairs = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"sbatch option must be KEY=VALUE, got {item!r}")
            key, sep, val = item.partition("=")
            pairs.append((key, val if sep else True))
    out: dict[str, Any] = {}
    for key, val in pairs:
        key = str(key).strip().lstrip("-")
        if not re.match(r"^[a-z][a-z0-9_-]*$", key):
            raise ValueError(
                f"sbatch option {key!r}: not an option name (KEY=VALUE, e.g. constraint=cpu)"
            )
        if key in _SBATCH_OWN:
            own = _SBATCH_OWN[key]
            raise ValueError(
                f"sbatch option {key!r} is set by the backend"
                + (f"; use its {own} option" if own else "")
            )
        if val is not True:
            val = str(val)
            if not val or any(c in val for c in "\n\r\0"):
                raise ValueError(f"sbatch option {key!r}: empty or multi-line value {val!r}")
        out[key.replace("-", "_")] = val
    return out


def _slurm_word(what: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SLURM_WORD.match(value):
        raise ValueError(
            f"slurm {what} must be a name such as 'cpu' (letters, digits, _.-), got {value!r}"
        )
    return value


def _run_job(*unit: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """The function each SLURM job runs: :func:`run_unit` (``unit``: its fn, point, run_dir,
    kwargs and threads) with the job's id in the locks."""
    try:
        import submitit

        job_id = submitit.JobEnvironment().job_id
    except Exception:  # noqa: BLE001 - outside a submitit job: no tag
        job_id = None
    return run_unit(*unit, owner=f"job:{job_id}" if job_id else None)


class SlurmBackend:
    """Points as SLURM jobs, submitted with submitit: one job per unit of work (a point, or an
    ensemble of compatible supervised points), each running :func:`run_unit` (the points'
    locks, their failure isolation and the driver's resume work as with the other backends),
    on ``threads`` CPUs with that many torch threads.

    folder: where submitit keeps each job's files (``<folder>/<job id>/``: the pickled call,
        its pickled result, the job's stdout/stderr logs); default ``<sweep folder>/slurm``. It
        must be on storage the compute nodes share with the driver, like the sweep folder.
    workers: at most this many jobs queued or running at once (default 64): the rest wait in
        the driver, so a killed driver leaves at most that many jobs behind.
    partition, time (minutes or ``[D-]HH:MM:SS``, default 1 hour), mem (``8G``), account, qos:
        the sbatch options of every job; sbatch: more options as ``KEY=VALUE`` (``constraint=cpu``,
        ``gres=gpu:1``); setup: shell lines run before each job (``module load ...``,
        ``source venv/bin/activate``).
    cluster: ``"slurm"``, or ``"local"`` for submitit's local executor (each job a process on
        this machine, the SLURM options ignored): the same code path without a queue.
    poll_s: how often the driver looks for finished jobs; result_wait_s: how long it waits for
        the result file of a job that ended (a shared filesystem can show it late) before
        calling the point failed.

    A job that ends without a result (time limit, memory, node failure, ``scancel``) is a
    failed point with the job's id, state and the tail of its log; the driver removes the lock
    that job left beside the point's folder, so the next run retries the point (a supervised
    point resumes its training from the last checkpoint).
    """

    name = "slurm"

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        *,
        workers: int | None = None,
        threads: int = 1,
        partition: str | None = None,
        time: Any = 60,
        mem: Any = None,
        account: str | None = None,
        qos: str | None = None,
        sbatch: Any = None,
        setup: Sequence[str] = (),
        cluster: str = "slurm",
        poll_s: float = 0.5,
        result_wait_s: float = 15.0,
    ) -> None:
        check_int("workers", workers, 1, allow_none=True)
        check_int("threads", threads, 1)
        if cluster not in ("slurm", "local"):
            raise ValueError(f"slurm cluster must be 'slurm' or 'local', got {cluster!r}")
        self.workers = int(workers or 64)
        self.threads = int(threads)
        self.partition = _slurm_word("partition", partition)
        self.time_min = parse_slurm_time(time)
        self.mem = None if mem is None else parse_slurm_mem(mem)
        self.account = _slurm_word("account", account)
        self.qos = _slurm_word("qos", qos)
        self.sbatch = parse_sbatch_args(sbatch)
        if isinstance(setup, str):
            setup = [setup]
        for line in setup:
            if not isinstance(line, str) or "\n" in line or "\0" in line:
                raise ValueError(f"slurm setup lines must be one line of shell each, got {line!r}")
        self.setup = list(setup)
        self.cluster = cluster
        self.poll_s = float(poll_s)
        self.result_wait_s = float(result_wait_s)
        self.folder = None if folder is None else os.fspath(folder)
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ValueError(
                "backend 'slurm' needs submitit: pip install 'multitask-evidence[slurm]'"
            ) from None
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValueError(
                "backend 'slurm' needs SLURM's sbatch on PATH: run the sweep on a machine that "
                "submits jobs (a login node)"
            )
        self._executor: Any = None
        self._jobs: dict[Any, str] = {}  # job -> run_dir, while in flight

    def use_sweep_dir(self, sweep_dir: str | os.PathLike) -> None:
        """Called by the sweep engine: job files go under ``<sweep_dir>/slurm`` unless a folder
        was given."""
        if self.folder is None:
            self.folder = os.path.join(os.fspath(sweep_dir), "slurm")

    def parameters(self) -> dict[str, Any]:
        """The submitit parameters of every job (generic names, then ``slurm_*``)."""
        params: dict[str, Any] = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.threads,
            "tasks_per_node": 1,
            "nodes": 1,
        }
        if self.cluster == "slurm":
            slurm = {
                "slurm_partition": self.partition,
                "slurm_mem": self.mem,
                "slurm_account": self.account,
                "slurm_qos": self.qos,
                "slurm_setup": self.setup or None,
                "slurm_additional_parameters": dict(self.sbatch) or None,
            }
            params.update({k: v for k, v in slurm.items() if v is not None})
        else:
            params["local_setup"] = self.setup
        return params

    def start(self) -> None:
        if self._executor is not None:
            return
        if self.folder is None:
            raise ValueError("SlurmBackend needs a folder for its job files (or a sweep folder)")
        import submitit

        folder = os.path.join(self.folder, "%j")
        self._executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster)
        self._executor.update_parameters(**self.parameters())

    def capacity(self) -> int:
        return self.workers

    def submit(
        self, fn: Callable[..., Any], point: Any, run_dir: Any, kwargs: Mapping[str, Any]
    ) -> Any:
        self.start()
        first = point[0] if isinstance(run_dir, (list, tuple)) else point
        where = run_dir[0] if isinstance(run_dir, (list, tuple)) else run_dir
        pid = getattr(first, "id", None) or os.path.basename(os.path.normpath(where))
        if isinstance(run_dir, (list, tuple)) and len(run_dir) > 1:
            pid += f"+{len(run_dir) - 1}"  # an ensemble: its first point and how many more
        self._executor.update_parameters(name=f"mte-{pid}"[:120])
        job = self._executor.submit(_run_job, fn, point, run_dir, dict(kwargs), self.threads)
        job._results_timeout_s = self.result_wait_s  # submitit's wait for a late result file
        self._jobs[job] = run_dir
        return job

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            done = [h for h in handles if h.done()]
            left = deadline - time.monotonic()
            if done or left <= 0:
                return done
            time.sleep(min(self.poll_s, left))

    def result(self, handle: Any) -> dict[str, Any]:
        run_dir = self._jobs.pop(handle, None)
        try:
            out = handle.result()
        except Exception as e:  # noqa: BLE001 - UncompletedJobError, FailedJobError, ...
            for d in [run_dir] if isinstance(run_dir, str) else run_dir or []:
                release_lock_of(d, f"job:{handle.job_id}")
            state = getattr(handle, "state", "UNKNOWN")
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            return {
                "status": "failed",
                "error": f"slurm job {handle.job_id} ended without a result ({state}): {first}"
                f" (log: {handle.paths.stderr})",
                "traceback": str(e),
                "job_id": str(handle.job_id),
            }
        if isinstance(out, dict):
            out = {**out, "job_id": str(handle.job_id)}
        elif isinstance(out, list):  # an ensemble's members, all run by this job
            out = [{**o, "job_id": str(handle.job_id)} for o in out]
        return out

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # an interrupted driver takes its queued and running points with it
            for job in list(self._jobs):
                try:
                    job.cancel(check=False)
                except Exception:  # noqa: BLE001 - already gone, scancel missing, ...
                    pass
        self._jobs.clear()


BACKENDS = ("local", "ray", "slurm")


def make_backend(
    backend: Any,
    *,
    workers: int | None = None,
    address: str | None = None,
    threads: int = 1,
    slurm: Mapping[str, Any] | None = None,
) -> Any:
    """``"local"`` / ``"ray"`` / ``"slurm"`` / a backend instance -> a backend instance.

    slurm: options of :class:`SlurmBackend` (partition, time, mem, account, qos, sbatch, setup,
    folder, cluster) for ``backend="slurm"``."""
    if not isinstance(backend, str):
        return backend
    if slurm and backend != "slurm":
        raise ValueError(f"slurm options {sorted(slurm)} are only used with backend='slurm'")
    if backend == "local":
        if address:
            raise ValueError("address is only used with backend='ray'")
        return LocalBackend(workers=workers, threads=threads)
    if backend == "ray":
        return RayBackend(workers=workers, address=address, threads=threads)
    if backend == "slurm":
        if address:
            raise ValueError("address is only used with backend='ray'")
        opts = dict(slurm or {})
        allowed = set(inspect.signature(SlurmBackend).parameters) - {"workers", "threads"}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise ValueError(f"unknown slurm option(s) {unknown}; allowed: {sorted(allowed)}")
        return SlurmBackend(workers=workers, threads=threads, **opts)
    raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
