"""The core and the agents run with Qt absent, and resources ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK_QT = textwrap.dedent("""
    import importlib.abc, pkgutil, sys

    class NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {"PySide6", "qasync", "pyqtgraph", "shiboken6", "widgets"}:
                raise ImportError(f"Qt is not installed here ({name})")
            return None

    sys.meta_path.insert(0, NoQt())
    import console, agents
    for pkg in (console, agents):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if mod.name == "console.app" or ".migrations" in mod.name:
                continue
            __import__(mod.name)
    from console.cli import main
    sys.exit(main(["run", "--headless", "--scenario", "quiet-day", "--json"]))
""")


def test_core_imports_and_runs_without_qt(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "WATCHFLOOR_DATA_DIR": str(tmp_path / "d"),
                               "WATCHFLOOR_CONFIG_DIR": str(tmp_path / "c"),
                               "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"schema": "watchfloor.run/1"' in proc.stdout


def test_resources_are_read_through_the_package() -> None:
    root = resources.files("resources")
    assert (root / "scenarios" / "bad-deploy.yaml").is_file()
    assert (root / "estates" / "default.yaml").is_file()
    assert (root / "themes" / "dark.qss").is_file()


@pytest.mark.slow
def test_wheel_ships_resources_and_migrations(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("watchfloor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("resources/scenarios/storm.yaml", "resources/estates/default.yaml",
                   "resources/themes/dark.qss", "console/storage/migrations/env.py",
                   "console/storage/migrations/versions/0001_create_everything.py",
                   "console/storage/migrations/script.py.mako"):
        assert needed in names
    assert not any(n.startswith("tests/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "watchfloor = console.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
