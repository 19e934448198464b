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
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from console.runtime import Runtime, ScenarioDriver

STEP_SECONDS = 15.0


def render_snapshot(scenario: str, at_seconds: float, out_dir: Path, *,
                    db_url: str = "sqlite://", seed: int | None = None,
                    size: tuple[int, int] = (1600, 1000), user: str = "operator",
                    panes: bool = True, theme: str = "dark") -> list[Path]:
    """Play `scenario` to `at_seconds` and save the window (and each pane) as PNGs.

    Needs a QApplication. Uses a private database and a throw-away QSettings file, so
    the snapshot neither reads nor changes the operator's own layout.
    """
    from console.app import build_window  # the composition root wires the panes

    app = QApplication.instance()
    if app is None:
        raise RuntimeError("render_snapshot needs a QApplication")
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = Runtime(db_url)
    with tempfile.TemporaryDirectory() as tmp:
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
                app.processEvents()
                saved = [out_dir / "screenshot.png"]
                window.grab().save(str(saved[0]))
                if panes:
                    for name, dock in window.docks.items():
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
