"""`watchfloor ingest --format grafana|zabbix|datadog|otlp FILE`: deliveries saved as those
systems send them, imported as their receiver paths read them; a bad one anywhere in the
file is exit 2 with the document named, and nothing of the file is stored."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from console.cli import main
from console.runtime import Runtime
from tests.provider_payloads import DATADOG, GRAFANA, OTLP_LOGS, ZABBIX_WEBHOOK


@pytest.mark.parametrize(("fmt", "body", "service"), [
    ("grafana", GRAFANA, "checkout"), ("zabbix", ZABBIX_WEBHOOK, "payments"),
    ("datadog", DATADOG, "cart"), ("otlp", OTLP_LOGS, "search")])
def test_saved_deliveries_are_imported(tmp_path: Path, db_url: str, fmt: str, body: dict,
                                       service: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text(json.dumps(body) + "\n")
    assert main(["ingest", "--format", fmt, str(path), "--db", db_url,
                 "--as", "alice"]) == 0
    out = capsys.readouterr().out
    assert "stored 1 signal(s) (1 firing, 0 resolved) and 0 change(s)" in out
    with Runtime(db_url) as rt:
        (sig,) = rt.service.recent_signals()
        assert (sig.source, sig.service) == (fmt, service)
        if fmt == "otlp":
            assert out.rstrip().endswith("with 2 log line(s)")
            assert len(rt.service.log_templates()) == 2


def test_a_bad_delivery_in_the_file_stores_nothing(tmp_path: Path, db_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = copy.deepcopy(OTLP_LOGS)
    bad["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] = "high"
    path = tmp_path / "otlp.jsonl"
    path.write_text(json.dumps(OTLP_LOGS) + "\n" + json.dumps(bad) + "\n")
    assert main(["ingest", "--format", "otlp", str(path), "--db", db_url,
                 "--as", "alice"]) == 2
    assert ("document 1: resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: "
            "not an integer") in capsys.readouterr().err
    with Runtime(db_url) as rt:
        assert rt.service.signal_count() == 0
        assert rt.service.payload_count() == 0
        assert rt.service.log_templates() == []
