"""Settings -> Providers: the monitoring systems this console can hear from, read only.

The same list as `watchfloor providers` (console/providers_cli.py `listing`): each
provider found through the `watchfloor.providers` entry points, push or pull, the
package and version it came from, its health and where it receives. One installed with
pip since the console started shows up on Refresh. Finding them reads the installed
packages' metadata and asks configured pull providers how they are, so it runs on a
worker thread (widgets/offthread.py), never on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.sources.providers.base import ProviderConfig
from widgets.offthread import BackgroundJob
from widgets.settings_models import RowsModel

HEADERS = ("Provider", "Kind", "From", "Health", "Receives at / detail")


def rows_of(listing: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(row["name"], row["kind"] or "-", row["origin"], row["health"]["state"],
             ", ".join(row.get("paths") or ()) or row["health"]["detail"])
            for row in listing]


class ProvidersTab(QWidget):
    """`config` gives the addresses of pull providers to ask (Settings -> Sources)."""

    def __init__(self, config: Callable[[], ProviderConfig],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("providersTab")
        self.config = config
        self.model = RowsModel(HEADERS, editable=False, parent=self)
        self.view = QTableView(self)
        self.view.setObjectName("providersTable")
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        self.view.setAlternatingRowColors(True)
        header = self.view.horizontalHeader()
        for column in range(len(HEADERS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.status = QLabel("Finding providers...", self)
        self.status.setObjectName("providersStatus")
        self.status.setWordWrap(True)
        refresh = QPushButton("Refresh", self)
        refresh.setObjectName("providersRefresh")
        refresh.clicked.connect(lambda _checked=False: self.refresh())
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Read only. A provider comes from an installed package "
                                "(entry point group watchfloor.providers); install one "
                                "with pip and restart the console to receive from it.", self))
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)
        self._job = BackgroundJob("providers-list", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self.refresh()

    def refresh(self) -> None:
        from console.providers_cli import listing

        config = self.config()
        self.status.setText("Finding providers...")
        self._job.submit(lambda: listing(config))

    def shutdown(self) -> None:
        self._job.shutdown()

    def _on_job_finished(self, listing: Any) -> None:
        self.model.set_rows(rows_of(listing))
        # another package's provider is named with its package: its name may be taken
        bad = [row["name"] if row["origin"].startswith("watchfloor ")
               else f"{row['name']} ({row['origin']})" for row in listing
               if row["health"]["state"] in ("unusable", "degraded")]
        self.status.setText(f"{len(listing)} providers" + (
            f"; needs a look: {', '.join(bad)}" if bad else ""))

    def _on_job_failed(self, message: str) -> None:
        self.status.setText(f"Providers could not be listed: {message}")
