"""`watchfloor node`'s receiver flags are checked before it joins a team: exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main


@pytest.mark.parametrize("listen", ["nope", "127.0.0.1:0", "127.0.0.1:70000"])
def test_a_bad_listen_address_is_refused(listen: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["node", "--scenario", "quiet-day", "--listen", listen])
    assert exited.value.code == 2
    assert "--listen" in capsys.readouterr().err


def test_a_bad_mapping_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("mappings:\n  grafana:\n    fields: {name: 7}\n")
    assert main(["node", "--scenario", "quiet-day", "--db", f"sqlite:///{tmp_path}/x.db",
                 "--webhook-mappings", str(bad)]) == 2
    assert "m.yaml" in capsys.readouterr().err
