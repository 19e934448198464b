"""The command, http and prometheus executors against real processes and real servers on
loopback (never a mocked subprocess or httpx): a value from an alert is one literal
argument or one percent-encoded URL segment, or it is refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from console.actions.base import ExecutorError
from console.actions.command import CommandExecutor
from console.actions.http import HttpExecutor
from console.actions.prometheus import PrometheusProbe
from console.actions.runbooks import (
    Runbook,
    RunbookError,
    check_arguments,
    load_library,
    load_runbook,
    load_runbook_text,
    render_probe,
    render_step,
)
from console.clock import RealClock
from console.execution import ExecutionError
from console.policy import Policy
from console.runtime import Runtime
from tests.helpers import stop_process

PY = sys.executable
ECHO_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"
CRASH_RUNBOOKS = Path(__file__).parent / "crash" / "runbooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command_step(*args: str, timeout: float = 10.0) -> dict[str, Any]:
    return {"executor": "command", "argv": [PY, "-c", *args], "timeout": timeout}


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` stopped running (a zombie nobody reaped yet has stopped too)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


# --- command ----------------------------------------------------------------------------


def test_argv_reaches_the_program_literally(tmp_path: Path) -> None:
    args = ["two words", "'single'", '"double"', "*", "$HOME", "a\\b", "", "--"]
    result = CommandExecutor(cwd=tmp_path).execute(command_step(ECHO_ARGV, *args))
    assert result.ok, result
    assert json.loads(result.output["stdout"]) == args
    assert result.output["exit_code"] == 0
    assert result.output["duration_s"] >= 0


def test_only_allow_listed_environment_reaches_the_child(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHFLOOR_TEST_SECRET", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    monkeypatch.setenv("WATCHFLOOR_REGION", "eu-1")
    monkeypatch.setenv("TZ", "UTC")
    executor = CommandExecutor(env_names=["WATCHFLOOR_REGION"])
    result = executor.execute(command_step("import json, os; print(json.dumps(dict(os.environ)))"))
    env = json.loads(result.output["stdout"])
    assert "hunter2" not in result.output["stdout"]
    assert "WATCHFLOOR_TEST_SECRET" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["WATCHFLOOR_REGION"] == "eu-1"
    assert env["TZ"] == "UTC"
    # Python may add LC_CTYPE itself (PEP 538 locale coercion); nothing else appears
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "WATCHFLOOR_REGION", "LC_CTYPE"}
    preview = executor.preview(command_step("pass"))
    assert "WATCHFLOOR_REGION" in preview["env"]
    assert "eu-1" not in json.dumps(preview)  # names only, never values


@pytest.mark.parametrize("then", ["time.sleep(60)", "pass"])  # hangs / leaves a child behind
def test_timeout_kills_the_child_and_its_children(then: str) -> None:
    code = ("import subprocess, time; "
            f"p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); {then}")
    started = time.monotonic()
    result = CommandExecutor().execute(command_step(code, timeout=1.0))
    assert time.monotonic() - started < 10
    assert not result.ok
    assert result.output["timed_out"]
    assert "time limit" in result.message
    assert gone(int(result.output["stdout"].split()[0])), "a child outlived the time limit"


def test_output_is_captured_and_truncated() -> None:
    code = "import sys; sys.stdout.write('x' * 200000); sys.stderr.write('warn')"
    out = CommandExecutor(output_limit=1000).execute(command_step(code)).output
    assert (out["exit_code"], out["stdout"], out["stdout_truncated"]) == (0, "x" * 1000, True)
    assert (out["stderr"], out["stderr_truncated"]) == ("warn", False)


def test_a_non_zero_exit_fails_the_step_and_the_probe() -> None:
    executor = CommandExecutor()
    result = executor.execute(command_step("import sys; sys.stderr.write('boom'); sys.exit(3)"))
    assert (result.ok, result.output["exit_code"], result.message[:6]) == (False, 3, "exit 3")
    assert "boom" in result.message
    assert not executor.rollback(command_step("raise SystemExit(1)")).ok
    failing = executor.validate({"kind": "command", "argv": [PY, "-c", "raise SystemExit(2)"],
                                 "timeout": 5})
    assert (failing.passed, failing.value) == (False, 2.0)
    passing = executor.validate({"kind": "command", "argv": [PY, "-c", "pass"], "timeout": 5})
    assert (passing.passed, passing.value) == (True, 0.0)


@pytest.mark.parametrize(("argv", "message"), [
    ("ls -l /", "non-empty list"),
    ([], "non-empty list"),
    ([PY, "-c", "pass", "a\0b"], "NUL"),
    ([PY, "-c", "pass", "x" * 4097], "longer than 4096"),
    ([PY, "-c", "pass", 3], "not text"),
    (["no-such-program-watchfloor"], "not found"),
    (["./run.sh"], "absolute or a bare name"),
    (["/nonexistent/bin/tool"], "not found"),
])
def test_malformed_argv_is_refused_before_anything_runs(argv: Any, message: str) -> None:
    executor = CommandExecutor()
    step = {"executor": "command", "argv": argv, "timeout": 5}
    for call in (executor.preview, executor.execute, executor.rollback):
        with pytest.raises(ExecutorError, match=message):
            call(step)
    with pytest.raises(ExecutorError, match=message):
        executor.validate({"kind": "command", "argv": argv})


def test_a_bad_timeout_or_kind_is_refused() -> None:
    executor = CommandExecutor()
    for timeout in (0, -1, "10", True, 10**9):
        with pytest.raises(ExecutorError, match="timeout"):
            executor.execute({"executor": "command", "argv": [PY, "-c", "pass"],
                              "timeout": timeout})
    with pytest.raises(ExecutorError, match="cannot run"):
        executor.execute({"executor": "http", "argv": [PY, "-c", "pass"]})
    with pytest.raises(ExecutorError, match="cannot run"):
        executor.validate({"kind": "promql", "argv": [PY, "-c", "pass"]})


def test_command_preview_is_deterministic_and_names_what_runs(tmp_path: Path) -> None:
    executor = CommandExecutor(cwd=tmp_path)
    step = {"executor": "command", "argv": ["python3", "-c", "pass"], "timeout": 30.0}
    first = executor.preview(step)
    assert first == executor.preview(dict(step))
    assert first == {"executor": "command", "argv": ["python3", "-c", "pass"],
                     "program": shutil.which("python3"), "timeout": 30.0,
                     "cwd": str(tmp_path.resolve()), "env": sorted(first["env"])}
    assert executor.preview({**step, "argv": ["python3", "-c", "pass", "x"]}) != first


# --- the acceptance test: alert text and a command runbook ---------------------------------

HOSTILE = [
    "; rm -rf VICTIM",
    "$(touch PWNED)",
    "`touch PWNED`",
    "| cat /etc/passwd",
    "&& touch PWNED",
    "cart\ntouch PWNED",
    "'; touch PWNED; echo '",
    '"; touch PWNED; echo "',
    "${IFS}touch${IFS}PWNED",
    "*",
    "-rf",
    "--output=PWNED",
]

ECHO_BOOK = f"""
id: echo-value
title: Pass a value to a program
action_class: hygiene
parameters:
  value: {{type: str}}
steps:
  - executor: command
    argv: [{PY}, -c, "import json, sys; print(json.dumps(sys.argv))", "{{value}}"]
    timeout: 10s
preview: "Echo {{value}}"
validation:
  command: {{argv: [{PY}, -c, "pass", "{{value}}"], timeout: 10s}}
  deadline: 30s
rollback: none
risk: low
blast_radius: 1
owner: test
"""


@dataclass
class Traps:
    pwned: Path
    victim: Path

    def arm(self, label: str) -> str:
        return label.replace("PWNED", str(self.pwned)).replace("VICTIM", str(self.victim))

    def untouched(self) -> bool:
        return not self.pwned.exists() and (self.victim / "keep").exists()


@pytest.fixture
def traps(tmp_path: Path) -> Traps:
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "keep").write_text("still here")
    return Traps(tmp_path / "pwned", victim)


@pytest.mark.parametrize("template", HOSTILE)
def test_shell_text_is_refused_or_reaches_the_program_as_one_literal_argument(
        traps: Traps, tmp_path: Path, template: str) -> None:
    label = traps.arm(template)
    book = load_runbook_text(ECHO_BOOK, "echo.yaml")
    with pytest.raises(ValueError, match="parameter value"):
        check_arguments(book, {"value": label})
    # Even with the check skipped, the executor hands the value over as one argument.
    step = {"executor": "command", **render_step(book.steps[0], {"value": label})}
    result = CommandExecutor(cwd=tmp_path).execute(step)
    assert result.ok, result
    child_argv = json.loads(result.output["stdout"])
    assert child_argv == ["-c", label]  # python reports -c as argv[0], then our one value
    assert traps.untouched()


@pytest.fixture
def live_runtime(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url, clock=RealClock())
    runtime.service.bootstrap_admin("alice")
    runtime.service.set_policy(Policy(levels={"hygiene": 3}), as_user="alice")
    runtime.service.set_autonomy_ceiling(3, as_user="alice")
    engine = runtime.service.engine
    engine.library = {**engine.library, "echo-value": load_runbook_text(ECHO_BOOK, "echo.yaml")}
    yield runtime
    runtime.close()


@pytest.mark.parametrize("template", HOSTILE)
def test_alert_text_in_a_command_runbook_never_becomes_a_run(
        live_runtime: Runtime, traps: Traps, template: str) -> None:
    engine = live_runtime.service.engine
    with pytest.raises(ExecutionError, match="parameter value"):
        engine.propose("echo-value", {"value": traps.arm(template)},
                       requester="agent:recommender", confidence=0.95, autonomous=True)
    engine.drain()
    assert engine.recommendations() == []
    assert engine.executions() == []
    assert traps.untouched()


def test_a_command_runbook_runs_and_validates_through_the_lifecycle(
        live_runtime: Runtime) -> None:
    engine = live_runtime.service.engine
    assert {"command", "http"} <= set(engine.executors)  # registered by default
    rec_id = engine.propose("echo-value", {"value": "cart-1.2:ok"},
                            requester="agent:recommender", confidence=0.95, autonomous=True)
    rec = engine.recommendation(rec_id)
    assert rec is not None
    effect = rec.preview["steps"][0]["effect"]
    assert effect["argv"][-1] == "cart-1.2:ok"
    assert effect["program"] == PY
    engine.drain()
    deadline = time.monotonic() + 20
    while engine.executions(("validating",)) and time.monotonic() < deadline:
        time.sleep(0.05)
        engine.poll()
    [execution] = engine.executions()
    assert execution.state == "succeeded", execution.result
    step = execution.result["steps"][0]
    assert json.loads(step["output"]["stdout"])[1:] == ["cart-1.2:ok"]
    assert execution.result["validation"]["passed"]


# --- http ---------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(record: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            path = urlsplit(self.path).path
            if path == "/fail":
                status, payload, extra = 500, b"E" * 100_000, {}
            elif path == "/redirect":
                status, payload, extra = 302, b"", {"Location": "/landed"}
            elif path.startswith("/status/"):
                status, payload, extra = int(path.rsplit("/", 1)[1]), b"", {}
            else:
                status, payload, extra = 200, b'{"ok": true}', {}
            self.send_response(status)
            for name, value in {"Content-Length": str(len(payload)), **extra}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    record = Loopback(0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(record))
    server.daemon_threads = True
    record.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def http() -> Iterator[HttpExecutor]:
    executor = HttpExecutor()
    yield executor
    executor.close()


def book_doc(step: dict[str, Any], validation: dict[str, Any] | None = None,
             parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "call-api", "title": "Call an API", "action_class": "hygiene",
            "parameters": parameters or {"name": {"type": "str"}}, "steps": [step],
            "preview": "Call the API",
            "validation": {**(validation or {"promql": "up"}), "deadline": "1m"},
            "rollback": "none", "risk": "low", "blast_radius": 1, "owner": "test"}


def http_book(step: dict[str, Any], validation: dict[str, Any] | None = None,
              parameters: dict[str, Any] | None = None) -> Runbook:
    doc = book_doc({"executor": "http", **step}, validation, parameters)
    return load_runbook_text(yaml.safe_dump(doc, sort_keys=False), "call-api.yaml")


def load_error(tmp_path: Path, doc: dict[str, Any]) -> tuple[str, str]:
    """The RunbookError message for `doc` saved as a file, and the file's text."""
    text = yaml.safe_dump(doc, sort_keys=False)
    path = tmp_path / "book.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message, text


@pytest.mark.parametrize(("value", "sent", "plain_name"), [
    ("../admin?x=1#f", "/items/..%2Fadmin%3Fx%3D1%23f?mode=dry", False),
    ("a/b c&d=e", "/items/a%2Fb%20c%26d%3De?mode=dry", False),
    # plain names by check_arguments, yet a client would climb the path with them as text
    ("..", "/items/%2E%2E?mode=dry", True),
    ("v1/../../admin", "/items/v1%2F..%2F..%2Fadmin?mode=dry", True),
])
def test_url_placeholders_are_percent_encoded_into_one_segment(
        loopback: Loopback, http: HttpExecutor, value: str, sent: str,
        plain_name: bool) -> None:
    book = http_book({"method": "GET", "url": loopback.base + "/items/{name}?mode=dry"})
    if plain_name:
        assert check_arguments(book, {"name": value}) == {"name": value}
    else:
        with pytest.raises(ValueError, match="parameter name"):
            check_arguments(book, {"name": value})
    step = {"executor": "http", **render_step(book.steps[0], {"name": value})}
    result = http.execute(step)
    assert result.ok, result
    [seen] = loopback.seen
    assert seen.path == sent
    parts = urlsplit(seen.path)
    assert parts.path.count("/") == 2  # /items/<one segment>
    assert parse_qs(parts.query) == {"mode": ["dry"]}
    assert not parts.fragment


def test_the_body_template_keeps_types_and_arrives_as_json(
        loopback: Loopback, http: HttpExecutor) -> None:
    note = 'he said "stop" \\ then }{ and \'quit\'\n'
    book = http_book({
        "method": "POST", "url": loopback.base + "/scale",
        "headers": {"X-Team": "platform"},
        "body": {"count": "{count}", "note": "{note}", "dry": False,
                 "nested": {"items": ["{count}", "n={count}"], "fixed": "{{literal}}"}}},
        parameters={"count": {"type": "int", "min": 1, "max": 9}, "note": {"type": "str"}})
    step = {"executor": "http", **render_step(book.steps[0], {"count": 3, "note": note})}
    assert http.execute(step).ok
    [seen] = loopback.seen
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Team"] == "platform"
    assert json.loads(seen.body) == {"count": 3, "note": note, "dry": False,
                                     "nested": {"items": [3, "n=3"], "fixed": "{literal}"}}


def test_non_2xx_fails_with_the_status_and_a_truncated_body(loopback: Loopback) -> None:
    executor = HttpExecutor(body_limit=1000)
    try:
        failed = executor.execute({"executor": "http", "method": "POST",
                                   "url": loopback.base + "/fail", "body": {"a": 1}})
        assert not failed.ok
        assert failed.output["status"] == 500
        assert failed.output["body"] == "E" * 1000
        assert failed.output["body_truncated"]
        assert "HTTP 500" in failed.message
        moved = executor.execute({"executor": "http", "method": "GET",
                                  "url": loopback.base + "/redirect"})
        assert (moved.ok, moved.output["status"]) == (False, 302)
        assert [s.path for s in loopback.seen] == ["/fail", "/redirect"]  # not followed
    finally:
        executor.close()


def test_hosts_off_the_allow_list_and_odd_urls_are_refused(loopback: Loopback) -> None:
    refusing = HttpExecutor(allowed_hosts={"127.0.0.1:1"})
    allowing = HttpExecutor(allowed_hosts={f"127.0.0.1:{loopback.port}"})
    step = {"executor": "http", "method": "GET", "url": loopback.base + "/ok"}
    try:
        for call in (refusing.preview, refusing.execute):
            with pytest.raises(ExecutorError, match="allow-list"):
                call(step)
        with pytest.raises(ExecutorError, match="allow-list"):
            refusing.validate({"kind": "http", "method": "GET", "url": step["url"]})
        assert loopback.seen == []
        assert allowing.execute(step).ok
        for url, message in [("file:///etc/passwd", "http"),
                             ("ftp://127.0.0.1/x", "http"),
                             (f"http://user:pw@127.0.0.1:{loopback.port}/", "credentials"),
                             (loopback.base + "/a b", "whitespace")]:
            with pytest.raises(ExecutorError, match=message):
                allowing.execute({**step, "url": url})
        for headers in ({"X-A": "a\r\nX-Injected: 1"}, {"Host": "evil"}, {"Bad Name": "x"}):
            with pytest.raises(ExecutorError, match="header"):
                allowing.execute({**step, "headers": headers})
        with pytest.raises(ValueError, match="host:port"):
            HttpExecutor(allowed_hosts={"example.com"})
    finally:
        refusing.close()
        allowing.close()


def test_http_validate_passes_on_the_expected_status(loopback: Loopback,
                                                     http: HttpExecutor) -> None:
    book = http_book({"method": "POST", "url": loopback.base + "/do"},
                     {"http": {"url": loopback.base + "/status/{name}", "expect_status": 204}})
    probe = render_probe(book.validation, {"name": "204"})
    assert probe == {"kind": "http", "method": "GET", "url": loopback.base + "/status/204",
                     "expect_status": 204, "headers": {}, "timeout": 10.0}
    assert http.validate(probe).passed
    down = http.validate({**probe, "url": loopback.base + "/status/503"})
    assert (down.passed, down.value) == (False, 503.0)
    assert "expected 204" in down.detail
    closed = http.validate({**probe, "url": f"http://127.0.0.1:{free_port()}/"})
    assert not closed.passed
    with pytest.raises(ExecutorError, match="method"):
        http.validate({**probe, "method": "POST"})


def test_http_preview_is_deterministic_and_hides_header_values(http: HttpExecutor) -> None:
    step = {"executor": "http", "method": "PUT", "url": "http://127.0.0.1:9/x?a=%2F",
            "body": {"n": 1}, "headers": {"Authorization": "Bearer s3cret"}, "timeout": 5.0}
    first = http.preview(step)
    assert first == http.preview(json.loads(json.dumps(step)))
    assert first == {"executor": "http", "method": "PUT", "url": "http://127.0.0.1:9/x?a=%2F",
                     "body": {"n": 1}, "headers": ["Authorization"], "timeout": 5.0}
    assert "s3cret" not in json.dumps(first)


@pytest.mark.parametrize(("change", "field"), [
    ({"url": "http://{name}:8080/x"}, "host and port are fixed"),
    ({"url": "http://h@127.0.0.1/x"}, "host and port are fixed"),
    ({"url": "gopher://127.0.0.1/x"}, "http(s) url"),
    ({"headers": {"X-Name": "{name}"}}, "cannot hold placeholders"),
    ({"headers": {"X-Name": "a\r\nX-Evil: 1"}}, "CR, LF"),
    ({"headers": {"Content-Length": "5"}}, "not allowed"),
    ({"body": {"n": "{other}"}}, "not declared parameters"),
])
def test_bad_http_steps_are_refused_at_load_with_file_line_and_field(
        tmp_path: Path, change: dict[str, Any], field: str) -> None:
    message, _ = load_error(tmp_path, book_doc(
        {"executor": "http", "method": "POST", "url": "http://127.0.0.1:8080/x/{name}",
         **change}))
    assert field in message, message
    assert "steps.0" in message or "not declared" in message


@pytest.mark.parametrize(("validation", "field"), [
    ({"command": {"argv": ["python3", "-c", "pass"]}, "promql": "up"}, "exactly one"),
    ({"command": {"argv": ["{name}"]}}, "program"),
    ({"command": {"argv": ["python3", "x{name}"]}}, "whole argument"),
    ({"command": {"argv": ["python3", "{nope}"]}}, "not declared parameters"),
    ({"http": {"url": "http://127.0.0.1/{nope}"}}, "not declared parameters"),
    ({"http": {"url": "http://127.0.0.1/", "method": "POST"}}, "method"),
    ({"http": {"url": "http://127.0.0.1/", "expect_status": 99}}, "expect_status"),
])
def test_bad_validations_are_refused_with_file_line_and_field(
        tmp_path: Path, validation: dict[str, Any], field: str) -> None:
    message, text = load_error(tmp_path, book_doc({"executor": "command", "argv": ["true"]},
                                                  validation))
    assert field in message, message
    if "not declared" not in message:  # that one is about the whole runbook
        line = next(n for n, row in enumerate(text.splitlines(), 1)
                    if row.startswith("validation:"))
        assert int(message.split(":")[1]) >= line
        assert "validation" in message


# --- prometheus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback (Debian's package; ready in well under a second)."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: bash scripts/bootstrap.sh test installs it")
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (folder / "prom.log").open("wb") as log:
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = HttpExecutor()
        deadline = time.monotonic() + 30
        while not probe.validate({"kind": "http", "method": "GET",
                                  "url": url + "/-/ready"}).passed:
            assert proc.poll() is None, (folder / "prom.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.1)
        probe.close()
        yield url
    finally:
        stop_process(proc)


def test_promql_passes_on_a_non_empty_result(prometheus_url: str) -> None:
    probe = PrometheusProbe(prometheus_url, timeout=5.0)
    try:
        hit = probe.validate({"kind": "promql", "query": "vector(1)"})
        assert (hit.passed, hit.value) == (True, 1.0)
        miss = probe.validate({"kind": "promql", "query": "vector(1) > 2"})
        assert not miss.passed
        assert "empty result" in miss.detail
        with pytest.raises(ExecutorError, match="parenthesis"):
            probe.validate({"kind": "promql", "query": "sum("})
        with pytest.raises(ExecutorError, match="promql only"):
            probe.validate({"kind": "check", "query": "vector(1)"})
        for call in (probe.preview, probe.execute, probe.rollback):
            with pytest.raises(ExecutorError, match="only validates"):
                call({"executor": "prometheus"})
    finally:
        probe.close()


def test_a_runbook_promql_validation_renders_and_runs(prometheus_url: str) -> None:
    book = http_book({"method": "POST", "url": "http://127.0.0.1:9/x"},
                     {"promql": 'absent(up{{job="{name}"}})'})
    probe_spec = render_probe(book.validation, {"name": "cart"})  # {{ }} are PromQL's braces
    assert probe_spec == {"kind": "promql", "query": 'absent(up{job="cart"})'}
    probe = PrometheusProbe(prometheus_url)
    try:
        assert probe.validate(probe_spec).passed  # no such job: absent() gives one sample
    finally:
        probe.close()


def test_an_unreachable_prometheus_is_a_check_that_could_not_run() -> None:
    probe = PrometheusProbe(f"http://127.0.0.1:{free_port()}", timeout=2.0)
    try:
        with pytest.raises(ExecutorError, match="prometheus"):
            probe.validate({"kind": "promql", "query": "up"})
    finally:
        probe.close()


# --- the crash-test runbook -----------------------------------------------------------------


def test_the_crash_probe_runbook_loads_and_its_validation_renders(tmp_path: Path) -> None:
    book = load_library(CRASH_RUNBOOKS)["crash-probe"]
    marker = tmp_path / "marker"
    params = check_arguments(book, {"marker": str(marker)})
    probe = render_probe(book.validation, params)
    assert probe["kind"] == "command"
    assert probe["argv"][0] == "python3"
    assert probe["argv"][-1] == str(marker)
    assert probe["timeout"] == 30.0
    executor = CommandExecutor(cwd=tmp_path)
    step = {"executor": "command", **render_step(book.steps[0], params)}
    assert executor.execute(step).ok
    assert marker.read_text() == "run\n"
    later = time.time() + 60  # "just written" without racing the clock
    os.utime(marker, (later, later))
    assert not executor.validate(probe).passed
    os.utime(marker, (later - 120, later - 120))
    assert executor.validate(probe).passed


def test_the_http_executor_and_httpx_are_loaded_only_when_a_step_needs_them(
        tmp_path: Path) -> None:
    """Opening the execution engine (every console and command does) costs no HTTP stack;
    the first http step or probe makes the executor, once."""
    import sys

    code = ("import sys\n"
            "from console.runtime import Runtime\n"
            f"rt = Runtime('sqlite:///{tmp_path / 'lazy.db'}')\n"
            "http = rt.service.engine.executors['http']\n"
            "assert 'httpx' not in sys.modules, 'httpx loaded with the engine'\n"
            "assert not http.made\n"
            "try:\n"
            "    http.preview({'executor': 'http', 'method': 'TRACE', 'url': 'x'})\n"
            "except Exception as exc:\n"
            "    assert 'method' in str(exc), exc\n"
            "assert http.made and 'httpx' in sys.modules\n"
            "rt.close()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[1])
