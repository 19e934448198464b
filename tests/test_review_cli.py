"""`watchfloor review FILE` on a bundle written by `watchfloor audit export --out F`:
the command line reaches the GUI composition root's `run_review` with the file (the
window itself is tested in test_gui_audit_browser.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from console import review_cli
from console.cli import main


def review_args(path: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="watchfloor")
    review_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["review", str(path)])


def exported(db_url: str, tmp_path: Path) -> Path:
    assert main(["kill-switch", "on", "--as", "alice", "--db", db_url]) == 0
    out = tmp_path / "night.json"
    assert main(["audit", "export", "--out", str(out), "--db", db_url]) == 0
    return out


def test_review_opens_an_exported_bundle(db_url: str, tmp_path: Path) -> None:
    bundle = exported(db_url, tmp_path)
    opened: list[Path] = []

    def run(path: Path) -> int:
        opened.append(path)
        return 0

    assert review_cli.dispatch(review_args(bundle), run=run) == 0
    assert opened == [bundle]


def test_review_runs_the_gui_roots_review_window(db_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a stand-in the command goes through `console.app.run_review`, which runs
    the review app over the file and returns its exit code."""
    import widgets.audit_review

    bundle = exported(db_url, tmp_path)
    ran: list[Path] = []

    def run_review_app(path: Path) -> int:
        ran.append(path)
        return 0

    monkeypatch.setattr(widgets.audit_review, "run_review_app", run_review_app)
    assert review_cli.dispatch(review_args(bundle)) == 0
    assert ran == [bundle]
    assert main(["review", str(bundle)]) == 0  # the same through the whole command line
    assert ran == [bundle, bundle]

