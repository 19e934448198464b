"""Helpers for the team-mode tests: `watchfloor node` processes whose JSON events are
read as they come, and a slow runbook whose one step a killed leader leaves running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

# The step writes its pid (so the fixture can stop it if a test fails) and takes a while,
# so that a leader killed meanwhile leaves it `running`.
STEP = ("import os, sys, time; f = open(sys.argv[1], 'a'); "
        "f.write('run ' + str(os.getpid()) + chr(10)); f.close(); time.sleep(6)")
PROBE = "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 1)"
UNDO = "import sys; f = open(sys.argv[1], 'a'); f.write('rollback' + chr(10)); f.close()"
SLOW_RUNBOOK = textwrap.dedent(f"""\
    id: slow-mark
    title: Append to a marker file, then take a while (team-mode tests)
    action_class: hygiene
    parameters:
      marker: {{type: str, description: file the step appends to}}
    steps:
      - executor: command
        argv: [python3, -c, {json.dumps(STEP)}, "{{marker}}"]
        timeout: 30s
    preview: "Append a line to {{marker}}, slowly"
    validation:
      command:
        argv: [python3, -c, {json.dumps(PROBE)}, "{{marker}}"]
      deadline: 20s
    rollback:
      - executor: command
        argv: [python3, -c, {json.dumps(UNDO)}, "{{marker}}"]
    risk: low
    blast_radius: 1
    owner: test
    """)


class NodeProcess:
    """One `python -m console.node_cli node ... --json-events`; its events are parsed
    as they come by a reader thread."""

    def __init__(self, url: str, name: str, folder: Path, runbooks: Path, *,
                 scenario: str = "quiet-day", speed: float = 5.0,
                 extra: tuple[str, ...] = ()) -> None:
        """`extra`: more arguments for `watchfloor node` (e.g. --listen)."""
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.stderr_path = folder / "stderr.log"
        self._stderr = self.stderr_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WATCHFLOOR_DATA_DIR": str(folder / "data"),
               "WATCHFLOOR_CONFIG_DIR": str(folder / "config")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.node_cli", "node", "--db", url,
             "--scenario", scenario, "--speed", str(speed), "--name", name, "--json-events",
             "--runbooks", str(runbooks), *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError), self._lock:
                self.events.append(json.loads(line))

    def find(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        with self._lock:
            return next((e for e in self.events if match(e)), None)

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float,
             what: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            if self.proc.poll() is not None and self.find(match) is None:
                raise AssertionError(f"node {self.name} exited ({self.proc.returncode}) "
                                     f"waiting for {what}: {self.stderr_path.read_text()[-3000:]}")
            return self.find(match)

        return wait_for(found, timeout, f"{what} at node {self.name}")  # type: ignore[no-any-return]

    @property
    def console_id(self) -> str:
        joined = self.find(lambda e: e["event"] == "joined")
        assert joined is not None
        return str(joined["console"])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(5)
        self._stderr.close()
        return self.proc.returncode
