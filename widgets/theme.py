"""Themes: the QSS files shipped in `resources/themes/` plus the few colours QSS cannot
reach (pyqtgraph paints its plots itself)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

THEMES = ("dark", "light")
DEFAULT_THEME = "dark"


@dataclass(frozen=True, slots=True)
class PlotColors:
    background: str
    foreground: str
    error: str
    latency: str
    threshold: str  # the degraded threshold line
    critical: str  # the critical threshold line


@dataclass(frozen=True, slots=True)
class StateColors:
    """Text colours of states in tables (backgrounds are translucent tints of these)."""

    red: str
    amber: str
    green: str
    blue: str
    dimmed: str


STATE_COLORS = {
    "dark": StateColors(red="#ff6b70", amber="#f2a623", green="#4cc26a", blue="#6ea8ff",
                        dimmed="#7d8792"),
    "light": StateColors(red="#b81f27", amber="#9a5b00", green="#1d7a36", blue="#2359c4",
                         dimmed="#8a929c"),
}

PLOT_COLORS = {
    "dark": PlotColors(background="#171a1f", foreground="#aab3bf", error="#ff6b70",
                       latency="#6ea8ff", threshold="#f2a623", critical="#ff6b70"),
    "light": PlotColors(background="#ffffff", foreground="#404852", error="#c6343b",
                        latency="#2f5fb8", threshold="#c77c00", critical="#c6343b"),
}


def check_theme(name: str) -> str:
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r} (known: {', '.join(THEMES)})")
    return name


THEME_DIR_TOKEN = "@THEME_DIR@"
"""Stands for the themes folder in QSS `url()`s (Qt needs a real path for images)."""


def load_stylesheet(name: str) -> str:
    """The QSS of a theme, read through the package so it works from a wheel too."""
    folder = resources.files("resources") / "themes"
    text = (folder / f"{check_theme(name)}.qss").read_text(encoding="utf-8")
    # An installed package is a folder; from a zip there is no path to give Qt, and the
    # checked box is then only filled, without its tick.
    where = folder.as_posix() if isinstance(folder, Path) else ""
    return text.replace(THEME_DIR_TOKEN, where)


def next_theme(name: str) -> str:
    return THEMES[(THEMES.index(name) + 1) % len(THEMES)] if name in THEMES else DEFAULT_THEME
