"""Labels of a plot's vertical marks that never sit on each other.

A deploy, its approval, the run and its validation often fall within a minute or two;
their labels drawn at one height run into each other ("deployrollback"). Whether two
labels collide depends on the zoom and the plot's size, not on a fixed number of
seconds, so the heights are chosen from where the labels really are on screen, again
whenever the range or the size changes: each label goes to the highest row where it
touches no label placed before it, rows one text line apart.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyqtgraph as pg
from PySide6.QtCore import QRectF

TOP = 0.92  # the first row's height, as a fraction of the view (pyqtgraph's position)
GAP_PX = 6.0  # labels closer than this side by side read as one word
MARGIN_PX = 4.0  # the text item's own margin above and below the text


def restack(lines: Iterable[pg.InfiniteLine]) -> list[int]:
    """Put each line's label (in time order) in the highest row where it overlaps no
    label placed before it, or the least crowded row when none is free; returns the
    rows chosen."""
    ordered = [line for line in sorted(lines, key=lambda each: each.value())
               if line.label is not None]
    box = ordered[0].getViewBox() if ordered else None
    if box is None or box.height() <= 0:
        return []
    box.updateMatrix()  # the range may just have changed: place the labels in the new one
    line_px = _padded(ordered[0].label).height() + 1.0
    step = line_px / box.height()
    rows = max(1, int(TOP / step))
    placed: list[QRectF] = []
    chosen = []
    for line in ordered:
        label = line.label
        crowd = []
        for row in range(rows):
            label.setPosition(TOP - step * row)
            rect = _padded(label)
            hits = sum(1 for other in placed if rect.intersects(other))
            crowd.append(hits)
            if not hits:
                break
        row = crowd.index(min(crowd))
        label.setPosition(TOP - step * row)
        placed.append(_padded(label))
        chosen.append(row)
    return chosen


def _padded(label: pg.InfLineLabel) -> QRectF:
    """Where the label's text is on screen now (pyqtgraph would only work it out when
    it paints), widened by the gap two labels keep side by side."""
    label.updateTransform(force=True)
    return label.sceneBoundingRect().adjusted(-GAP_PX / 2, MARGIN_PX, GAP_PX / 2, -MARGIN_PX)
