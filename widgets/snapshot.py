"""PNGs of the console at a given moment of a scenario, without waiting in real time.

Used for docs/screenshot.png and meant for the future `watchfloor snapshot` command:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python -m widgets.snapshot \\
        --scenario bad-deploy --at 900 --out docs/

(`QT_QPA_PLATFORM=offscreen` works too, with the offscreen platform's fonts.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from console.runtime import Runtime, ScenarioDriver

STEP_SECONDS = 15.0
SETTLE_SECONDS = 0.6  # the panes read in batches a few hundred ms apart


def settle(app: QCoreApplication, seconds: float = SETTLE_SECONDS) -> None:
    """Let the panes finish the reads the last steps asked for (their batching timers
    fire on real time, which a snapshot otherwise skips)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()


def render_snapshot(scenario: str, at_seconds: float, out_dir: Path, *,
                    db_url: str | None = None, seed: int | None = None,
                    size: tuple[int, int] = (1600, 1000), user: str = "operator",
                    panes: bool = True, theme: str = "dark") -> list[Path]:
    """Play `scenario` to `at_seconds` and save the window (and each pane) as PNGs.

    Needs a QApplication. Uses a private database and a throw-away QSettings file, so
    the snapshot neither reads nor changes the operator's own layout. The private
    database is a file, not SQLite's in-memory one: that is one database per thread,
    and the agents write from worker threads.
    """
    from console.app import build_window  # the composition root wires the panes

    app = QApplication.instance()
    if app is None:
        raise RuntimeError("render_snapshot needs a QApplication")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(db_url or f"sqlite:///{Path(tmp) / 'snapshot.db'}")
        settings = QSettings(str(Path(tmp) / "snapshot.ini"), QSettings.Format.IniFormat)
        try:
            runtime.service.bootstrap_admin(user)
            driver = ScenarioDriver(runtime, scenario, seed=seed, agents=True)
            runtime.service.record(actor="system", action="scenario.start",
                                   target=driver.scenario.name,
                                   inputs={"seed": driver.player.seed, "mode": "snapshot"})
            window = build_window(runtime, driver, user, settings=settings)
            try:
                if window.theme != theme:
                    window.apply_theme(theme)
                window.resize(*size)
                window.show()
                while driver.elapsed < at_seconds and not driver.finished:
                    driver.step(min(STEP_SECONDS, at_seconds - driver.elapsed))
                    app.processEvents()
                # The outcomes pane recomputes its KPIs on a real-time debounce, which
                # the fast steps above outrun: ask for the moment's report now.
                window.outcomes_pane.refresh()
                settle(app)
                window.incidents_pane.draw_plot_now()  # its timer is 2 s of real time
                app.processEvents()
                saved = [out_dir / "screenshot.png"]
                window.grab().save(str(saved[0]))
                if panes:
                    # Every pane, the new ones included; a dock tabbed behind another is
                    # brought to the front first, so it is laid out at its real size.
                    for name, dock in window.docks.items():
                        dock.raise_()
                        settle(app, 0.05)
                        path = out_dir / f"pane-{name}.png"
                        dock.widget().grab().save(str(path))
                        saved.append(path)
                return saved
            finally:
                window.close()
                window.deleteLater()
                app.processEvents()
        finally:
            runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m widgets.snapshot",
                                     description="Save PNGs of the console at a moment "
                                                 "of a scenario.")
    parser.add_argument("--scenario", default="bad-deploy")
    parser.add_argument("--at", type=float, default=900.0, metavar="SIM_SECONDS")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--theme", choices=["dark", "light"], default="dark")
    parser.add_argument("--window-only", action="store_true", help="no per-pane PNGs")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    for path in render_snapshot(args.scenario, args.at, args.out, seed=args.seed,
                                theme=args.theme, panes=not args.window_only):
        print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
