"""Evaluators: how one candidate network is trained and scored.

- :class:`CommandEvaluator`: the user's own training, a command template such as
  ``python train.py --spec {spec} --out {out} --seed {seed}``. ``{spec}`` becomes a scaled YAML
  spec written for the candidate, ``{out}`` a path where the command writes a JSON object
  holding the metric, ``{seed}`` the seed. The command runs without a shell (its words are split
  like a shell would, and each field is substituted inside one word, so a path with spaces stays
  one argument) unless the template uses shell syntax (a pipe, ``&&``, a redirection, ``$VAR``),
  in which case it runs under ``/bin/sh -c`` with each field substituted shell-quoted. It runs
  in its own process group: a timeout (or Ctrl-C) kills the whole group. Without ``{out}`` the
  last line of its stdout must be the JSON object. The environment also carries
  ``SCALEKIT_SPEC``, ``SCALEKIT_OUT``, ``SCALEKIT_SEED`` and ``SCALEKIT_THREADS``.
- ``builtin:proxy``: the same machinery running scalekit's proxy task
  (``python -m scalekit.search.proxy``), see :mod:`scalekit.search.proxy`.
- :class:`CallableEvaluator`: a Python function ``f(spec, seed) -> float | dict`` (the API only);
  it runs in the calling process (not held to a timeout there), or with ``workers > 1`` each
  evaluation in a worker process of its own (killed at its timeout).

Every outcome is an :class:`Evaluation`: a metric, or a failure with a one-line reason and the
tail of stderr. A failure never stops the search. No torch here.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .grid import SearchUsageError

FIELDS = ("spec", "out", "seed")
_FIELD = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
# what makes a template need a shell: operators, redirections, substitutions, globs
_SHELL = re.compile(r"[|&;<>()`$*?~]|^\s*(export|cd|source|\.)\s")
MAX_RESULT_BYTES = 1_000_000  # a metric file is a few hundred bytes
TAIL_LINES = 20
TAIL_CHARS = 2000
KILL_GRACE_S = 3.0  # SIGTERM, then this long before SIGKILL


@dataclass(frozen=True)
class Task:
    """One evaluation to run: a candidate network (as plain spec YAML) and a seed."""

    key: str  # the network's digest (grid.network_digest)
    seed: int
    spec_yaml: str
    label: str  # "alpha=1.2 beta=1.1 gamma=1.15", for progress lines and errors
    threads: int = 1  # CPU threads the evaluation may use (SCALEKIT_THREADS)


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation gave: ``metric`` (ok) or a one-line ``reason`` (failed)."""

    key: str
    seed: int
    ok: bool
    metric: float | None
    seconds: float
    reason: str | None = None
    stderr_tail: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)  # the JSON's other scalar fields
    host: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "seed": self.seed, "status": "ok" if self.ok else "failed",
                "metric": self.metric, "seconds": round(self.seconds, 3), "reason": self.reason,
                "stderr_tail": self.stderr_tail, "values": dict(self.values), "host": self.host}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Evaluation":
        return cls(key=str(d["key"]), seed=int(d["seed"]), ok=d.get("status") == "ok",
                   metric=None if d.get("metric") is None else float(d["metric"]),
                   seconds=float(d.get("seconds") or 0.0), reason=d.get("reason"),
                   stderr_tail=d.get("stderr_tail"), values=dict(d.get("values") or {}),
                   host=str(d.get("host") or ""))


def failed(task: Task, reason: str, seconds: float = 0.0, stderr_tail: str | None = None) -> Evaluation:
    return Evaluation(task.key, task.seed, False, None, seconds, one_line(reason), stderr_tail,
                      host=socket.gethostname())


def one_line(text: str, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


def tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    out = "\n".join(lines)
    return out[-TAIL_CHARS:]


def read_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16 * TAIL_CHARS))
            return tail(f.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""


def metric_from(data: Any, metric: str, where: str) -> tuple[float, dict[str, Any]]:
    """The metric in a result object, and its other scalar fields; ValueError(reason)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a JSON object")
    if metric not in data:
        keys = ", ".join(sorted(map(str, data))[:12]) or "none"
        raise ValueError(f"metric {metric!r} is not in the JSON {where} (its keys: {keys}); "
                         "--metric names the key")
    v = data[metric]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"metric {metric!r} in {where} is not a finite number: {v!r:.60}")
    others = {str(k): x for k, x in data.items() if k != metric and len(str(k)) <= 64 and (
        isinstance(x, (int, float, bool)) or (isinstance(x, str) and len(x) <= 200))}
    return float(v), dict(list(others.items())[:32])


# ---------------------------------------------------------------------------------------------
# command templates


def template_fields(template: str) -> set[str]:
    return set(_FIELD.findall(template))


def check_template(template: str) -> None:
    """A usable template: non-empty, with {spec}, and no unknown {field}
    (:class:`SearchUsageError`)."""
    if not template.strip():
        raise SearchUsageError("--evaluate: the command is empty")
    fields = template_fields(template)
    unknown = sorted(fields - set(FIELDS))
    if unknown:
        raise SearchUsageError(f"--evaluate: unknown field {{{unknown[0]}}} in the command "
                               "(fields: {spec}, {out}, {seed})")
    if "spec" not in fields:
        raise SearchUsageError("--evaluate: the command has no {spec}: it must read the "
                               "candidate's spec, e.g. \"python train.py --spec {spec} --out "
                               "{out} --seed {seed}\"")
    if not needs_shell(template):
        try:
            shlex.split(template)
        except ValueError as e:
            raise SearchUsageError(f"--evaluate: cannot split the command into words ({e})") \
                from None


def needs_shell(template: str) -> bool:
    """Shell syntax outside the fields: a pipe, &&, ;, a redirection, $VAR, a glob, `...`."""
    return bool(_SHELL.search(_FIELD.sub("", template)))


def substitute(template: str, values: Mapping[str, str], quote: bool) -> str:
    return _FIELD.sub(lambda m: shlex.quote(values[m.group(1)]) if quote
                      else values[m.group(1)], template)


@dataclass(frozen=True)
class CommandEvaluator:
    """Run a command per evaluation (see the module docstring). ``argv``: a fixed word list
    instead of a template (the built-in proxy); ``{python}`` in it is the running interpreter."""

    template: str
    metric: str = "accuracy"
    timeout: float | None = None
    cwd: str | None = None  # where the command runs (default: the current directory)
    argv: tuple[str, ...] | None = None
    name: str | None = None  # the identity of a built-in ("builtin:proxy ...")
    proxy: bool = False  # the built-in proxy task (reports say so)

    parallel = "threads"  # each evaluation is its own process: threads only wait for them

    def identity(self) -> str:
        """What the journal records as 'the evaluator': the template (or the built-in's name)
        and the metric. A journal written by another identity is refused."""
        return f"{self.name or 'command: ' + self.template} | metric: {self.metric}"

    def describe(self) -> str:
        """For people: the template (a built-in: its short name and changed options)."""
        return self.template

    @property
    def has_out(self) -> bool:
        return "out" in template_fields(self.template) or bool(
            self.argv and any("{out}" in a for a in self.argv))

    def command(self, values: Mapping[str, str]) -> tuple[list[str] | str, bool]:
        """(argv, False) or (shell string, True) for these field values."""
        if self.argv is not None:
            vals = {**values, "python": sys.executable}
            return [re.sub(r"\{(spec|out|seed|python)\}", lambda m: vals[m.group(1)], a)
                    for a in self.argv], False
        if needs_shell(self.template):
            return substitute(self.template, values, quote=True), True
        return [substitute(w, values, quote=False) for w in shlex.split(self.template)], False

    def evaluate(self, task: Task, stop: threading.Event | None = None) -> Evaluation:
        work = tempfile.mkdtemp(prefix="scalekit-eval-")
        try:
            return self._evaluate(task, work, stop)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _evaluate(self, task: Task, work: str, stop: threading.Event | None) -> Evaluation:
        spec_path = os.path.join(work, "candidate.yaml")
        out_path = os.path.join(work, "result.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            f.write(task.spec_yaml)
        values = {"spec": spec_path, "out": out_path, "seed": str(task.seed)}
        cmd, shell = self.command(values)
        env = dict(os.environ, SCALEKIT_SPEC=spec_path, SCALEKIT_OUT=out_path,
                   SCALEKIT_SEED=str(task.seed), SCALEKIT_THREADS=str(task.threads))
        cwd = self.cwd if self.cwd and os.path.isdir(self.cwd) else None
        stdout_path, stderr_path = os.path.join(work, "stdout"), os.path.join(work, "stderr")
        start = time.monotonic()
        try:
            status = run_process(cmd, shell=shell, env=env, cwd=cwd, stdout=stdout_path,
                                 stderr=stderr_path, timeout=self.timeout, stop=stop)
        except OSError as e:
            return failed(task, f"cannot run the command: {e.strerror or e}"
                          + (f" ({e.filename})" if e.filename else ""), time.monotonic() - start)
        seconds = time.monotonic() - start
        err_tail = read_tail(stderr_path)
        if status == "stopped":
            return failed(task, "stopped (the search was interrupted)", seconds, err_tail)
        if status == "timeout":
            return failed(task, f"timed out after {self.timeout:g} s (its process group was "
                                "killed)", seconds, err_tail)
        if status != 0:
            reason = (f"killed by signal {-status} ({_signal_name(-status)})" if status < 0
                      else f"exit status {status}")
            return failed(task, reason, seconds, err_tail)
        try:
            if self.has_out:
                data = _read_json(out_path, "{out}")
                where = "written to {out}"
            else:
                data = _last_json_line(stdout_path)
                where = "on the last line of stdout"
            value, others = metric_from(data, self.metric, where)
        except ValueError as e:
            return failed(task, str(e), seconds, err_tail)
        return Evaluation(task.key, task.seed, True, value, seconds, values=others,
                          host=socket.gethostname())


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return "unknown signal"


def _read_json(path: str, what: str) -> Any:
    try:
        size = os.path.getsize(path)
    except OSError:
        raise ValueError(f"the command exited 0 but wrote no {what} file") from None
    if size > MAX_RESULT_BYTES:
        raise ValueError(f"{what} is {size:,} bytes; a result is one small JSON object")
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"{what} is not valid JSON ({e})") from None


def _last_json_line(path: str) -> Any:
    text = read_tail_bytes(path, 64_000)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("the command exited 0 but printed nothing (a template without {out} "
                         "must print the JSON object as its last line)")
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise ValueError(f"the last line of stdout is not JSON: {lines[-1][:80]!r} (a template "
                         "without {out} must print the JSON object as its last line)") from None


def read_tail_bytes(path: str, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_process(cmd: list[str] | str, *, shell: bool, env: Mapping[str, str], cwd: str | None,
                stdout: str, stderr: str, timeout: float | None,
                stop: threading.Event | None = None) -> int | str:
    """Run ``cmd`` in a new process group (session), output to the two files. Returns its exit
    status (negative: killed by that signal), ``"timeout"`` or ``"stopped"``; either of the
    last two kills the whole group first (SIGTERM, then SIGKILL after a grace period)."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        args = ["/bin/sh", "-c", cmd] if shell else cmd
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env),
                             cwd=cwd, start_new_session=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    outcome: int | str | None = None
    try:
        while outcome is None:
            try:
                code = p.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                if stop is not None and stop.is_set():
                    outcome = "stopped"
                elif deadline is not None and time.monotonic() > deadline:
                    outcome = "timeout"
                continue
            outcome = code
    except BaseException:
        kill_group(p)
        raise
    if isinstance(outcome, str):
        kill_group(p)
    else:
        _kill_stragglers(p.pid)
    return outcome


def kill_group(p: subprocess.Popen) -> None:
    """SIGTERM the process group of ``p`` (started with its own session), then SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            p.wait(timeout=wait)
            _kill_stragglers(p.pid)
            break
        except subprocess.TimeoutExpired:
            continue


def _kill_stragglers(pgid: int) -> None:
    """Background children the command left in its group die with it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------
# Python callables (the API)


@dataclass(frozen=True)
class CallableEvaluator:
    """``fn(spec, seed)`` returning the metric (a number) or a mapping holding it."""

    fn: Callable[..., Any]
    metric: str = "accuracy"
    name: str | None = None
    timeout: float | None = None  # enforced only in worker processes (workers > 1)
    proxy: bool = False

    parallel = "processes"

    def identity(self) -> str:
        fn = self.fn
        what = self.name or f"python: {getattr(fn, '__module__', '?')}." \
                            f"{getattr(fn, '__qualname__', type(fn).__name__)}"
        return f"{what} | metric: {self.metric}"

    def describe(self) -> str:
        return self.identity().split(" | ")[0]

    def evaluate(self, task: Task, stop: threading.Event | None = None) -> Evaluation:
        from ..spec import parse_yaml, spec_from_dict

        start = time.monotonic()
        try:
            spec = spec_from_dict(parse_yaml(task.spec_yaml))
            out = self.fn(spec, task.seed)
            if isinstance(out, Mapping):
                value, others = metric_from(dict(out), self.metric, "returned")
            else:
                value, others = metric_from({self.metric: out}, self.metric, "returned")
        except ValueError as e:
            return failed(task, str(e), time.monotonic() - start)
        except Exception as e:  # the user's code failed: recorded, the search goes on
            return failed(task, f"{type(e).__name__}: {e}", time.monotonic() - start,
                          tail(traceback.format_exc()))
        return Evaluation(task.key, task.seed, True, value, time.monotonic() - start,
                          values=others, host=socket.gethostname())


