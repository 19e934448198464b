"""Run a local program for a runbook step: an argument list, never a shell.

The values in a command line may have started as alert labels or LLM output. They were
checked against their declared types, but this is the last place before they reach an
operating system, so the executor does not trust that: it takes a list (a value is one
argument, whatever it holds, and no shell ever reads it), names the program by an
absolute path or a PATH lookup done here, passes only an allow-listed environment (a
secret in the console's environment never reaches a script), bounds the run by the
step's timeout (the whole process group is killed, so a child it started cannot
outlive it) and keeps a bounded amount of output (a chatty program cannot fill memory
or the audit log).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from console.actions.base import ExecutorError, ProbeResult, StepResult

DEFAULT_ENV = ("HOME", "LANG", "LC_ALL", "PATH", "TZ")
MAX_ARG_CHARS = 4096
MAX_ARGS = 1024
OUTPUT_LIMIT = 64 * 1024  # bytes kept of stdout and of stderr, each
MAX_TIMEOUT = 86400.0
_CHUNK = 65536


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration: float
    timed_out: bool

    def output(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
                "stdout_truncated": self.stdout_truncated,
                "stderr_truncated": self.stderr_truncated,
                "duration_s": round(self.duration, 3), "timed_out": self.timed_out}

    def summary(self, timeout: float) -> str:
        if self.timed_out:
            return f"killed after its {timeout:g}s time limit"
        last = (self.stderr.strip().splitlines() or [""])[-1][:200]
        return f"exit {self.exit_code} in {self.duration:.2f}s" + (f": {last}" if last and
                                                                    self.exit_code else "")


class _Capture(threading.Thread):
    """Drains one pipe to its end, keeping the first `limit` bytes: a pipe that is not
    read blocks the child, one read without bound fills memory."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        super().__init__(daemon=True, name="command-output")
        self._pipe, self._limit = pipe, limit
        self._kept: list[bytes] = []
        self._size = 0
        self.truncated = False

    def run(self) -> None:
        try:
            while chunk := os.read(self._pipe.fileno(), _CHUNK):
                room = self._limit - self._size
                if room > 0:
                    self._kept.append(chunk[:room])
                    self._size += min(room, len(chunk))
                if len(chunk) > room:
                    self.truncated = True
        except (OSError, ValueError):  # the pipe was closed under us: keep what we have
            pass
        finally:
            self._pipe.close()

    def text(self) -> str:
        return b"".join(self._kept).decode("utf-8", errors="replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)


class CommandExecutor:
    """Steps {"executor": "command", "argv": [...], "timeout": s}; probes
    {"kind": "command", "argv": [...], "timeout": s} (pass on exit 0)."""

    kind = "command"

    def __init__(self, env_names: Iterable[str] = (), *, cwd: str | Path | None = None,
                 output_limit: int = OUTPUT_LIMIT, default_timeout: float = 60.0) -> None:
        self.env_names = tuple(sorted({*DEFAULT_ENV, *env_names}))
        self.cwd = str(Path(cwd).resolve()) if cwd is not None else None
        self.output_limit = output_limit
        self.default_timeout = default_timeout
        # A command acts on the machine it runs on; another team member's host is not it.
        self.target = f"host:{socket.gethostname()}"

    # --- checks -----------------------------------------------------------------------

    def _argv(self, spec: Mapping[str, Any]) -> tuple[list[str], str]:
        """The argv as given and the absolute path of its program, or ExecutorError."""
        argv = spec.get("argv")
        if not isinstance(argv, list | tuple) or not argv:
            raise ExecutorError("command: argv must be a non-empty list (never a shell string)")
        if len(argv) > MAX_ARGS:
            raise ExecutorError(f"command: more than {MAX_ARGS} arguments")
        for index, arg in enumerate(argv):
            if not isinstance(arg, str):
                raise ExecutorError(f"command: argv[{index}] is {type(arg).__name__}, not text")
            if "\0" in arg:
                raise ExecutorError(f"command: argv[{index}] holds a NUL byte")
            if len(arg) > MAX_ARG_CHARS:
                raise ExecutorError(f"command: argv[{index}] is longer than {MAX_ARG_CHARS}")
        name = argv[0]
        if not name or ("/" in name and not os.path.isabs(name)):
            raise ExecutorError(f"command: program {name!r} must be absolute or a bare name "
                                "found on PATH")
        found = shutil.which(name)
        if found is None:
            raise ExecutorError(f"command: program {name!r} not found or not executable")
        if not os.path.isabs(found):  # PATH held a relative entry such as "."
            raise ExecutorError(f"command: {name!r} resolves only through a relative PATH "
                                f"entry ({found!r})")
        return list(argv), found

    def _timeout(self, spec: Mapping[str, Any]) -> float:
        timeout = spec.get("timeout", self.default_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
                not 0 < timeout <= MAX_TIMEOUT:
            raise ExecutorError(f"command: timeout must be 0 < s <= {MAX_TIMEOUT:g}, "
                                f"got {timeout!r}")
        return float(timeout)

    def _env(self) -> dict[str, str]:
        return {name: os.environ[name] for name in self.env_names if name in os.environ}

    @staticmethod
    def _expect(spec: Mapping[str, Any], key: str, value: str) -> None:
        if spec.get(key, value) != value:
            raise ExecutorError(f"the command executor cannot run {key} {spec.get(key)!r}")

    # --- the Executor protocol ----------------------------------------------------------

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """What will run, where and with which environment names (values may be secret).
        The resolved program is part of it: a different binary is a different preview."""
        self._expect(step, "executor", "command")
        argv, program = self._argv(step)
        return {"executor": "command", "argv": argv, "program": program,
                "timeout": self._timeout(step),
                "cwd": self.cwd or "(the console's working directory)",
                "env": sorted(self._env())}

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        self._expect(step, "executor", "command")
        argv, program = self._argv(step)
        timeout = self._timeout(step)
        outcome = self._run(argv, program, timeout)
        return StepResult(outcome.exit_code == 0 and not outcome.timed_out,
                          outcome.summary(timeout), outcome.output())

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        return self.execute(step)

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        self._expect(probe, "kind", "command")
        argv, program = self._argv(probe)
        timeout = self._timeout(probe)
        outcome = self._run(argv, program, timeout)
        passed = outcome.exit_code == 0 and not outcome.timed_out
        return ProbeResult(passed, f"{argv[0]}: {outcome.summary(timeout)}",
                           float(outcome.exit_code))

    # --- running ----------------------------------------------------------------------

    def _run(self, argv: list[str], program: str, timeout: float) -> _Outcome:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, executable=program, shell=False, env=self._env(), cwd=self.cwd,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True)
        except OSError as exc:  # nothing ran
            raise ExecutorError(f"command: cannot start {argv[0]!r}: {exc}") from None
        assert proc.stdout is not None
        assert proc.stderr is not None
        captures = [_Capture(proc.stdout, self.output_limit),
                    _Capture(proc.stderr, self.output_limit)]
        for capture in captures:
            capture.start()
        deadline = started + timeout
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)  # the leader is not reaped yet, so its group id is ours
            code = proc.wait()
        for capture in captures:
            capture.join(max(0.0, deadline - time.monotonic()))
        if any(c.is_alive() for c in captures):
            # a child left behind still holds the output open past the limit: it goes too
            # (Linux does not reuse a pid while it names a live process group)
            timed_out = True
            _kill_group(proc.pid)
            for capture in captures:
                capture.join(1.0)
        out, err = captures
        return _Outcome(code, out.text(), err.text(), out.truncated, err.truncated,
                        time.monotonic() - started, timed_out)
