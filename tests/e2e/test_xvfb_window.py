"""The console as an operator starts it: a real window on an X display (Xvfb), the
estate playing and the agents working, then closed with Ctrl+C — with nothing on stderr
(Qt prints its warnings there: a missing platform plugin, a bad stylesheet, a layout
that cannot be satisfied)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_the_window_runs_on_a_real_display_without_qt_warnings(tmp_path: Path) -> None:
    assert shutil.which("xvfb-run"), "xvfb-run is missing: `bash scripts/bootstrap.sh test` " \
        "installs Debian's xvfb"
    env = dict(os.environ, WATCHFLOOR_DATA_DIR=str(tmp_path / "data"),
               WATCHFLOOR_CONFIG_DIR=str(tmp_path / "config"), WATCHFLOOR_USER="nightshift",
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), QT_DEBUG_PLUGINS="0")
    env.pop("QT_QPA_PLATFORM", None)  # the real xcb platform, not offscreen
    script = tmp_path / "run.sh"
    script.write_text(
        f'"{sys.executable}" -m console --speed 40 &\n'
        "pid=$!\n"
        "sleep 12\n"
        'kill -INT "$pid"\n'
        'wait "$pid"\n', encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "bash",
                           str(script)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode in (0, 130, -signal.SIGINT), done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert time.monotonic() - started >= 12
    assert (tmp_path / "data" / "watchfloor.db").exists()  # it really ran and stored
