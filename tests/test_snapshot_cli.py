"""`watchfloor snapshot`: PNGs of the window and each pane at a moment of a scenario,
offscreen; a bad scenario or moment exits 2 before any window opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

from console.cli import main

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


def _distinct_colours(path: Path) -> int:
    image = QImage(str(path))
    assert not image.isNull(), path
    step_x, step_y = max(1, image.width() // 60), max(1, image.height() // 40)
    return len({image.pixel(x, y) for x in range(0, image.width(), step_x)
                for y in range(0, image.height(), step_y)})


def test_snapshot_writes_the_window_and_every_pane(qapp: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shots"
    assert main(["snapshot", "--scenario", "bad-deploy", "--at", "780", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in printed)
    assert "screenshot.png" in names
    for pane in ("incidents", "recommendations", "history", "coordination", "audit", "ask"):
        assert f"pane-{pane}.png" in names
    for path in printed:
        assert _distinct_colours(Path(path)) > 8, f"{path} looks blank"
    window = QImage(str(out / "screenshot.png"))
    assert (window.width(), window.height()) == (1600, 1000)


@pytest.mark.parametrize(("argv", "says"), [
    (["--scenario", "no-such-scenario", "--at", "10"], "unknown scenario"),
    (["--scenario", "bad-deploy", "--at", "-5"], "must be 0 or more"),
    (["--scenario", "bad-deploy", "--at", "soon"], "not a number"),
])
def test_a_bad_snapshot_request_exits_2(argv: list[str], says: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["snapshot", *argv, "--out", str(tmp_path)])
    except SystemExit as exc:  # argparse's own exit for a bad argument
        code = exc.code
    assert code == 2
    assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
