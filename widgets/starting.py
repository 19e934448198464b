"""What the main window shows while the console starts: the step under way (opening the
database, playing the estate, starting the agents, laying out the panes) with a busy bar,
or, when the start failed, why. Only Qt is imported here: this is on screen before the
rest of the console is loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget


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
        self.bar.setRange(0, 0)  # busy: the steps have no known length
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(360)
        layout.addWidget(self.title)
        layout.addWidget(self.step)
        layout.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)

    def set_step(self, text: str) -> None:
        self.step.setText(text)

    def set_failed(self, message: str) -> None:
        self.title.setText("Watchfloor could not start")
        self.step.setText(message)
        self.bar.hide()
