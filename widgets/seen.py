"""Whether a pane can be seen now. A dock tabbed behind another stays "visible" to Qt
(isVisible() is True, no hide or show event when the tab changes); only its visible region
says it is off screen. Panes that redraw or recompute on a stream of events ask this
first, and catch up in `shown()`, which the main window calls when the dock comes to the
front (QDockWidget.visibilityChanged)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def on_screen(widget: QWidget) -> bool:
    return widget.isVisible() and not widget.visibleRegion().isEmpty()
