"""What the main window shows while the console starts: the step under way (opening the
database, signing in, loading the scenario, joining the team, laying out the panes) with
a bar of the steps done, or, when the start failed, why. Only Qt is imported here: this
is on screen before the rest of the console is loaded.

The bar counts steps instead of spinning: Qt's busy indicator repaints the window many
times a second, and each repaint enters Python (the main window's `event`) and takes the
interpreter lock from the thread doing the start's work: measured, about a tenth more
CPU before the panes are in, and the database step slower still on a busy machine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


START_STEPS = 5  # console.app's steps: database, sign-in, scenario, team, panes


class StartingPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startingPanel")
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        self.title = QLabel("Watchfloor is starting", self)
        self.title.setObjectName("startingTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        self.title.setFont(font)
        self.step = QLabel("", self)
        self.step.setObjectName("startingStep")
        self.step.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.step.setWordWrap(True)
        self.step.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("startingBar")
        self.bar.setRange(0, START_STEPS)  # the steps done; never an animation
        self.bar.setValue(0)
        self.steps_begun = 0
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(360)
        layout.addWidget(self.title)
        layout.addWidget(self.step)
        layout.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignHCenter)
        self.choices = QHBoxLayout()
        self.choices.setSpacing(12)
        self.choices.addStretch(1)
        self.choices.addStretch(1)
        layout.addLayout(self.choices)
        layout.addStretch(3)
        self._buttons: list[QPushButton] = []

    def set_step(self, text: str) -> None:
        """A step begins (the bar shows those before it as done)."""
        self.bar.setValue(min(self.steps_begun, START_STEPS))
        self.steps_begun += 1
        self._clear_choices()
        self.title.setText("Watchfloor is starting")
        self.bar.show()
        self.step.setText(text)

    def offer(self, title: str, message: str, choices: Sequence[tuple[str, str]],
              on_choice: Callable[[str], None]) -> None:
        """Stop and ask: `message` under `title`, one button per (objectName, label) of
        `choices`; `on_choice(objectName)` is called with the one pressed (the first is
        the default)."""
        self._clear_choices()
        self.title.setText(title)
        self.step.setText(message)
        self.bar.hide()
        for n, (name, label) in enumerate(choices):
            button = QPushButton(label, self)
            button.setObjectName(name)
            button.setDefault(n == 0)
            button.clicked.connect(lambda _checked=False, name=name: on_choice(name))
            self.choices.insertWidget(self.choices.count() - 1, button)
            self._buttons.append(button)
        if self._buttons:
            self._buttons[0].setFocus()

    def _clear_choices(self) -> None:
        for button in self._buttons:
            self.choices.removeWidget(button)
            button.deleteLater()
        self._buttons.clear()

    def set_failed(self, message: str) -> None:
        self._clear_choices()
        self.title.setText("Watchfloor could not start")
        self.step.setText(message)
        self.bar.hide()
