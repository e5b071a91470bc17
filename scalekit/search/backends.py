"""Where evaluations run: here (``local``, N at a time) or as Ray tasks (``ray``).

Both stream each finished :class:`~scalekit.search.evaluators.Evaluation` to ``on_result`` in the
calling thread as soon as it finishes (the search appends it to the journal there: one writer),
and on Ctrl-C stop what is running (command evaluators: their process groups are killed), then
raise :class:`SearchInterrupted`.

- :class:`LocalBackend`: command evaluators (and ``builtin:proxy``) run as ``workers`` processes
  at a time, each waited on by a thread; a Python callable runs in this process (``workers=1``),
  or each evaluation in a fresh process of its own, ``workers`` at a time (a worker that dies is
  a failed evaluation; its timeout and Ctrl-C kill it).
- :class:`RayBackend`: every evaluation is a Ray task with ``cpus_per_trial`` CPUs and
  ``gpus_per_trial`` GPUs; ``address`` (``auto``, ``ray://HOST:PORT``) joins an existing
  cluster, none starts a local Ray instance for the search and shuts it down after. Ray is an
  optional extra (``pip install 'scalekit-cnn[ray]'``), imported only here, only when used.

No torch here.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import ScalekitError
from ..extras import MissingDependency, require
from .evaluators import Evaluation, Task, failed
from .grid import SearchUsageError

BACKENDS = ("local", "ray")
OnResult = Callable[[Evaluation], None]


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search: what finished is in the journal."""


class BackendError(ScalekitError):
    """A backend that cannot run: Ray missing, a cluster that cannot be reached."""


def _evaluate(evaluator: Any, task: Task, stop: threading.Event | None = None) -> Evaluation:
    """One evaluation, wherever it runs; an unexpected error becomes a failed evaluation."""
    try:
        return evaluator.evaluate(task, stop)
    except Exception as e:  # noqa: BLE001 - recorded, the search goes on
        return failed(task, f"{type(e).__name__}: {e}")


def _ignore_sigint() -> None:  # pool workers: Ctrl-C is the parent's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class LocalBackend:
    workers: int = 1

    name = "local"

    def describe(self) -> str:
        return f"local, {self.workers} worker{'s' if self.workers != 1 else ''}"

    def run(self, tasks: Sequence[Task], evaluator: Any, on_result: OnResult) -> None:
        if not tasks:
            return
        if getattr(evaluator, "parallel", "threads") != "processes":
            _threads(tasks, lambda t, stop: _evaluate(evaluator, t, stop), on_result,
                     self.workers)
        elif self.workers == 1:
            for t in tasks:  # in this process: Ctrl-C interrupts the callable itself
                on_result(_evaluate(evaluator, t))
        else:
            try:
                pickle.dumps(evaluator)
            except Exception as e:  # noqa: BLE001 - a lambda, a closure, a local function
                raise SearchUsageError(
                    f"--workers {self.workers} runs the Python callable in worker processes, so "
                    f"it must be picklable (a module-level function); it is not "
                    f"({type(e).__name__}: {e}); use workers=1") from None
            ctx = _worker_context()
            _threads(tasks, lambda t, stop: _in_process(ctx, evaluator, t, stop), on_result,
                     self.workers)


def _threads(tasks: Sequence[Task], run: Callable[[Task, threading.Event], Evaluation],
             on_result: OnResult, workers: int) -> None:
    """Each evaluation is its own process (a command, or a callable in a process of its own):
    ``workers`` threads wait on them; results reach ``on_result`` in this thread."""
    stop = threading.Event()
    pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="scalekit-search")
    order = {id(t): i for i, t in enumerate(tasks)}
    futures = {pool.submit(run, t, stop): t for t in tasks}
    try:
        waiting = set(futures)
        while waiting:
            done, waiting = cf.wait(waiting, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: order[id(futures[f])]):
                on_result(fut.result())
    except KeyboardInterrupt:
        stop.set()  # every running evaluation's process (group) is killed, within seconds
        pool.shutdown(wait=True, cancel_futures=True)
        raise SearchInterrupted() from None
    pool.shutdown(wait=True)


def _worker_context() -> Any:
    """Where worker processes come from: a fork server (a clean, single-threaded process with
    scalekit imported, so a worker starts in milliseconds and no thread's lock is copied into
    it), or spawn where there is none."""
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return multiprocessing.get_context("spawn")
    ctx.set_forkserver_preload(["scalekit.search"])
    return ctx


def _child(evaluator: Any, task: Task, conn: Any) -> None:
    """A worker process: one evaluation of a Python callable, its result sent back."""
    _ignore_sigint()
    conn.send(_evaluate(evaluator, task))
    conn.close()


def _in_process(ctx: Any, evaluator: Any, task: Task, stop: threading.Event) -> Evaluation:
    """Run a callable evaluator in a fresh process of its own: a worker that dies (killed, out of
    memory) is a failed evaluation, and its timeout and Ctrl-C kill it."""
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(evaluator, task, send), daemon=True)
    start = time.monotonic()
    timeout = getattr(evaluator, "timeout", None)
    try:
        p.start()
    except Exception as e:  # noqa: BLE001
        return failed(task, f"cannot start a worker process: {type(e).__name__}: {e}")
    finally:
        send.close()
    try:
        while True:
            closed = False
            if recv.poll(0.1):
                try:
                    ev = recv.recv()
                except (EOFError, OSError):  # the worker went away without a result
                    closed = True
                else:
                    p.join(10)
                    return ev
            if closed or not p.is_alive() and not recv.poll(0):
                p.join()
                how = (f"killed by signal {-p.exitcode}" if p.exitcode and p.exitcode < 0
                       else f"exit status {p.exitcode}")
                return failed(task, f"the worker process died ({how})",
                              time.monotonic() - start)
            if stop.is_set():
                return failed(task, "stopped (the search was interrupted)",
                              time.monotonic() - start)
            if timeout is not None and time.monotonic() - start > timeout:
                return failed(task, f"timed out after {timeout:g} s (its worker process was "
                                    "killed)", time.monotonic() - start)
    finally:
        if p.is_alive():
            p.kill()
        p.join()
        recv.close()


# ---------------------------------------------------------------------------------------------
# Ray


def import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage-stats prompt or reporting
    try:
        ray = require("ray", purpose="--backend ray")  # optional: only when the backend runs
    except MissingDependency as e:
        raise BackendError(str(e)) from None
    return ray


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _probe(address: str) -> None:
    """An address HOST:PORT (or ray://HOST:PORT) must answer before ray.init is asked to join
    it: where nothing listens, ray.init retries for many minutes. ``auto`` fails fast on its
    own."""
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=3).close()
    except OSError as e:
        raise BackendError(f"--address {address}: nothing answers at {host}:{port} "
                           f"({e.strerror or type(e).__name__}); is the Ray cluster running "
                           "(ray start --head)?") from None


def ray_task(evaluator: Any, task: Task) -> Evaluation:
    """What a Ray worker runs: one evaluation, its process group killed at its timeout."""
    return _evaluate(evaluator, task)


@dataclass(frozen=True)
class RayBackend:
    """``address``: None starts a local Ray instance (``num_cpus`` CPUs, default all; no
    dashboard; ``temp_dir`` for its files), ``"auto"`` joins the cluster this machine belongs
    to, ``"ray://HOST:PORT"`` connects through Ray Client."""

    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    num_cpus: int | None = None
    temp_dir: str | None = None

    name = "ray"

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else \
            f"local Ray instance ({self.num_cpus or os.cpu_count()} CPUs)"
        return (f"ray, {where}, {self.cpus_per_trial:g} CPU"
                f"{'' if self.cpus_per_trial == 1 else 's'}"
                + (f" and {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else "")
                + " per trial")

    def connect(self, ray: Any) -> bool:
        """Connect (or start); True when this search started Ray and must shut it down."""
        if ray.is_initialized():
            return False
        if self.address:
            _probe(self.address)
        import logging

        # quiet: the evaluations' output is captured by the evaluators (stderr tails), so
        # workers' stdout/stderr stay in Ray's session logs, not on the search's terminal
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        try:
            if self.address:
                ray.init(address=self.address, **({} if self.address.startswith("ray://")
                                                  else kwargs))
            else:
                # a private instance: the tasks pass a spec's text and a small result, so a
                # small object store (Ray's minimum is 75 MiB; its default, 30% of memory)
                ray.init(num_cpus=self.num_cpus or os.cpu_count() or 1,
                         num_gpus=None if self.gpus_per_trial else 0,
                         object_store_memory=100 * 1024 ** 2, _temp_dir=self.temp_dir,
                         **kwargs)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds; say it in one line
            where = f"the Ray cluster at {self.address}" if self.address else \
                "a local Ray instance"
            msg = " ".join(str(e).split())[:300]
            raise BackendError(f"--backend ray: cannot reach or start {where}: "
                               f"{type(e).__name__}: {msg}") from None
        return True

    def run(self, tasks: Sequence[Task], evaluator: Any, on_result: OnResult) -> None:
        if not tasks:
            return
        ray = import_ray()
        started = self.connect(ray)
        try:
            remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                max_retries=0)(ray_task)
            evaluator_ref = ray.put(evaluator)
            refs = {remote.remote(evaluator_ref, t): t for t in tasks}
            try:
                while refs:
                    done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                    for ref in done:
                        t = refs.pop(ref)
                        try:
                            ev = ray.get(ref)
                        except Exception as e:  # noqa: BLE001 - a worker or node died
                            why = _ANSI.sub("", " ".join(str(e).split()))[:200]
                            ev = failed(t, f"the Ray task failed: {type(e).__name__}: {why}")
                        on_result(ev)
            except KeyboardInterrupt:
                # not force: the task sees KeyboardInterrupt and kills its command's process
                # group (which a killed Ray worker would leave running)
                for ref in refs:
                    try:
                        ray.cancel(ref, force=False)
                    except Exception:  # noqa: BLE001
                        pass
                try:
                    ray.wait(list(refs), num_returns=len(refs), timeout=10)
                except Exception:  # noqa: BLE001
                    pass
                raise SearchInterrupted() from None
        finally:
            if started:
                ray.shutdown()
