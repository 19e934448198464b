"""`watchfloor node` runs with the window's short GIL switch interval (console/switching.py):
the process that plays the estate and correlates the alerts hands the interpreter lock
over as often as the window's does. Run in a child process: the interval is the whole
process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from console import cli, node_cli
    from console.switching import SWITCH_INTERVAL_S

    seen = {"started": sys.getswitchinterval(), "wanted": SWITCH_INTERVAL_S}
    emit = node_cli.EventLog.emit

    def watch(self, event, **fields):
        emit(self, event, **fields)
        if event == "joined":  # the node is running: what is its interval now?
            seen["joined"] = sys.getswitchinterval()
            os.kill(os.getpid(), signal.SIGTERM)

    node_cli.EventLog.emit = watch
    seen["exit"] = cli.main(["node", "--scenario", "bad-deploy", "--db", sys.argv[1],
                             "--name", "switch-test", "--json-events"])
    print(json.dumps(seen))
""")


def test_the_node_runs_with_the_short_switch_interval(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, f"sqlite:///{tmp_path / 'n.db'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0
    assert report["started"] == pytest.approx(0.005)  # Python's default until the node sets it
    assert report["joined"] == pytest.approx(report["wanted"])
    assert report["wanted"] < report["started"]
