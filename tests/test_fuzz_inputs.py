"""Property tests over times and nesting, at every way in: each receiver route (through
`WebhookReceiver.handle()`, and over HTTP) and each `ingest` format.

Whatever the time (any year 1-9999, any offset, naive, garbage text, numbers) and however
deep the nest (up to 10,000 lists or objects, anywhere in the body), the receiver answers
200 or 400 and `ingest` exits 0 or 2. A refusal leaves a dead letter (receiver) and
stores nothing; an acceptance stores the delivery once, its times in UTC. Where the
answer is knowable from the input alone (an aware time in or out of range, a naive time,
a nest past 32 levels) it is checked to be that answer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from console.runtime import Runtime
from console.sources.timestamps import EARLIEST, LATEST, ZERO_TIME
from console.sources.webhook import WebhookReceiver
from tests.inputs import (  # rt and receiver are the shared fixtures
    receiver,
    rt,
    FILE_DOCS,
    GOOD_TIME,
    NEST,
    TIME_FIELD,
    alertmanager_body,
    change_body,
    counts,
    generic_body,
    ingest,
    nest_text,
    raw_json,
    stored_times,
)

FUZZ = settings(max_examples=75, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
_markers = itertools.count()


def marker() -> str:
    """A fresh mark per example, so no delivery is a duplicate of an earlier one."""
    return f"fuzz-{next(_markers)}"


@dataclass(frozen=True)
class Time:
    """A time as sent, and what must become of it: its UTC instant when it must be
    accepted, `None` with `refuse` when it must be refused, neither when it may go
    either way (garbage pydantic might read, such as a number taken as Unix time)."""

    value: Any
    instant: datetime | None = None
    refuse: bool = False
    utc: datetime | None = None  # the UTC instant, in range or not, when Python holds it


def _aware(moment: datetime, offset: timezone, zulu: bool) -> Time:
    local = moment.replace(tzinfo=offset)
    text = local.isoformat()
    if zulu and offset.utcoffset(None) == timedelta(0):
        text = text.replace("+00:00", "Z")
    try:
        instant = local.astimezone(UTC)
    except OverflowError:  # its UTC instant is before year 1 or after 9999
        return Time(text, refuse=True)
    if EARLIEST <= instant <= LATEST:
        return Time(text, instant, utc=instant)
    return Time(text, refuse=True, utc=instant)


offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59,
                                                                         59))
edge_moments = st.sampled_from([datetime(1, 1, 1), datetime(1, 1, 1, 23, 59),
                                datetime(1, 1, 2), datetime(9999, 12, 30, 23, 59, 59),
                                datetime(9999, 12, 31), datetime(9999, 12, 31, 23, 59, 59)])
aware_times = st.builds(_aware, moments | edge_moments, offsets | st.just(UTC),
                        st.booleans())
naive_times = (moments | edge_moments).map(lambda m: Time(m.isoformat(), refuse=True))
garbage_times = st.builds(Time, st.text(max_size=40) | st.integers() | st.booleans()
                          | st.none() | st.floats() | st.sampled_from(
                              ["0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "10000-01-01T00"
                               ":00:00Z", "2026-01-05T02:12:00+24:00", "2026-01-05", "now",
                               "1700000000", "-62135596800", "2026-01-05T02:12:00.123456789Z",
                               "2026-01-05 02:12:00Z", "2026-01-05T02:12:00\x00Z"])
                          | st.lists(st.integers(), max_size=3))
times = st.one_of(aware_times, naive_times, garbage_times)


@dataclass(frozen=True)
class Nest:
    """`depth` containers (lists or objects) put where the body has room for `parents`
    containers around them: past 32 levels in all, the body must be refused."""

    depth: int
    kind: str

    def text(self) -> str:
        return nest_text(self.depth, self.kind)


nests = st.builds(Nest, st.integers(1, 40) | st.integers(41, 10_000)
                  | st.sampled_from([30, 31, 32, 33, 999, 1000, 10_000]),
                  st.sampled_from(["list", "object"]))

ROUTES = ("/webhook/alertmanager", "/webhook/changes", "/webhook/generic/grafana")


def route_body(route: str, mark: str, at: Any, extra: Any = None) -> tuple[dict[str, Any], str]:
    """A body for the route with `at` in its time field, and the field's name."""
    if route == "/webhook/alertmanager":
        return alertmanager_body(mark, starts=at, extra=extra), "startsAt"
    if route == "/webhook/changes":
        return change_body(mark, at=at, extra=extra), "at"
    return generic_body(mark, at=at, extra=extra), "startsAt"



def deliver(rx: WebhookReceiver, rt: Runtime, route: str, raw: bytes,
            mark: str) -> tuple[int, str]:
    """One delivery through handle(); asserts what every delivery must hold."""
    before = counts(rt)
    status, answer = rx.handle(route, {}, raw)
    after = counts(rt)
    assert status in (200, 400), answer
    event(f"answered {status}")
    if status == 400:
        assert answer["error"]
        assert after.dead_letters == before.dead_letters + 1
        assert (after.signals, after.changes, after.payloads) == (
            before.signals, before.changes, before.payloads)
        return status, str(answer["error"])
    assert answer["status"] == "stored"
    assert after.payloads == before.payloads + 1
    assert after.dead_letters == before.dead_letters
    assert after.signals + after.changes == before.signals + before.changes + 1
    assert rx.handle(route, {}, raw)[1]["status"] == "duplicate"
    assert counts(rt) == after
    for at in stored_times(rt, mark):
        assert at.utcoffset() == timedelta(0)
    return status, ""


@FUZZ
@given(time=times, route=st.sampled_from(ROUTES))
def test_every_route_answers_any_time(receiver: WebhookReceiver, rt: Runtime, time: Time,
                                      route: str) -> None:
    mark = marker()
    body, field = route_body(route, mark, time.value)
    status, error = deliver(receiver, rt, route, raw_json(body), mark)
    if time.refuse:
        assert status == 400
        assert f"{field}:" in error
    elif time.instant is not None:
        assert status == 200, error
        assert stored_times(rt, mark) == [time.instant]


@FUZZ
@given(time=times)
def test_an_alert_end_time_is_checked_like_its_start(receiver: WebhookReceiver, rt: Runtime,
                                                     time: Time) -> None:
    mark = marker()
    body = alertmanager_body(mark, status="resolved", ends=time.value)
    status, error = deliver(receiver, rt, "/webhook/alertmanager", raw_json(body), mark)
    if time.value is None or time.utc == ZERO_TIME:
        assert status == 200, error  # no end, or Alertmanager's "no time": the alert's start
        assert stored_times(rt, mark) == [datetime(2026, 1, 5, 2, 12, tzinfo=UTC)]
    elif time.refuse:
        assert status == 400
        assert "endsAt:" in error
    elif time.instant is not None:
        assert status == 200, error
        assert stored_times(rt, mark) == [time.instant]


@FUZZ
@given(nest=nests, route=st.sampled_from(ROUTES), place=st.sampled_from(["extra", "time",
                                                                          "whole"]))
def test_every_route_answers_any_nesting(receiver: WebhookReceiver, rt: Runtime, nest: Nest,
                                         route: str, place: str) -> None:
    mark = marker()
    if place == "whole":
        raw, parents = nest.text().encode(), 0
    else:
        body, _ = route_body(route, mark, NEST if place == "time" else GOOD_TIME,
                             NEST if place == "extra" else None)
        raw = raw_json(body, nest.text())
        parents = 1 if place == "extra" else (1 if route == "/webhook/changes" else 3)
    status, error = deliver(receiver, rt, route, raw, mark)
    if parents + nest.depth > 32:
        assert status == 400
        assert "nested deeper than 32 levels" in error
    elif place == "extra" and route != "/webhook/changes":  # an unknown field is ignored
        assert status == 200, error


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(time=times, nest=nests)
def test_over_http_any_time_or_nest_is_200_or_400(rt: Runtime, time: Time,
                                                  nest: Nest) -> None:
    rx = WebhookReceiver(rt.service).start()
    try:
        for extra, text in ((None, None), (NEST, nest.text())):
            before = counts(rt)
            raw = raw_json(alertmanager_body(marker(), starts=time.value, extra=extra), text)
            answer = httpx.post(rx.url + "/webhook/alertmanager", content=raw, timeout=30)
            assert answer.status_code in (200, 400), answer.text
            after = counts(rt)
            if answer.status_code == 400:
                assert after.dead_letters == before.dead_letters + 1
                assert after.payloads == before.payloads
            else:
                assert after.payloads == before.payloads + 1
            if time.refuse or (extra is not None and 1 + nest.depth > 32):
                assert answer.status_code == 400
    finally:
        rx.close()


def _file(folder: Path, fmt: str, mark: str, at: Any, *, extra: Any = None,
          nest: Nest | None = None, plain: bool = False) -> Path:
    """One document of the format as a JSON file (or a plain log line)."""
    path = folder / f"{mark}.{fmt}"
    if plain:
        path.write_text(f"{at} ERROR payments: upstream returned 503 {mark}\n")
    else:
        doc = FILE_DOCS[fmt](mark, at, extra)
        path.write_bytes(raw_json(doc, nest.text() if nest is not None else None))
    return path


def run_ingest(path: Path, fmt: str, db_url: str, rt: Runtime, mark: str) -> tuple[int, str]:
    """One `ingest`; asserts what every import must hold."""
    before = counts(rt)
    code, out, err = ingest(path, fmt, db_url)
    after = counts(rt)
    assert code in (0, 2), err
    assert "Traceback" not in err
    event(f"exit {code}")
    if code == 2:
        assert str(path) in err
        assert after == before
        return code, err
    assert "stored" in out
    assert after.payloads == before.payloads + 1
    assert after.signals + after.changes + after.logs == \
        before.signals + before.changes + before.logs + 1
    for at in stored_times(rt, mark):
        assert at.utcoffset() == timedelta(0)
    return code, err


def _plain_log_time(value: Any) -> bool:
    """Whether the value can stand as the time of a plain log line (one word)."""
    return isinstance(value, str) and value != "" and "\x00" not in value and \
        not any(c.isspace() for c in value)


@FUZZ
@given(time=times, fmt=st.sampled_from(sorted(FILE_DOCS)), plain=st.booleans())
def test_every_import_format_takes_any_time(tmp_path: Path, db_url: str, rt: Runtime,
                                            time: Time, fmt: str, plain: bool) -> None:
    mark = marker()
    plain = plain and fmt == "logs" and _plain_log_time(time.value)
    code, err = run_ingest(_file(tmp_path, fmt, mark, time.value, plain=plain), fmt, db_url,
                           rt, mark)
    if time.refuse:
        assert code == 2
        assert "line 1: not a valid log record: at:" in err if plain else \
            f"{TIME_FIELD[fmt]}:" in err
    elif time.instant is not None:
        assert code == 0, err
        assert stored_times(rt, mark) == [time.instant]


@FUZZ
@given(nest=nests, fmt=st.sampled_from(sorted(FILE_DOCS)),
       place=st.sampled_from(["extra", "time"]))
def test_every_import_format_takes_any_nesting(tmp_path: Path, db_url: str, rt: Runtime,
                                               nest: Nest, fmt: str, place: str) -> None:
    mark = marker()
    if fmt == "logs":  # a log line holds at most 16 KiB: the nest is kept within it
        nest = Nest(min(nest.depth, 2_000), nest.kind)
    path = _file(tmp_path, fmt, mark, NEST if place == "time" else GOOD_TIME,
                 extra=NEST if place == "extra" else None, nest=nest)
    code, err = run_ingest(path, fmt, db_url, rt, mark)
    if 1 + nest.depth > 32:  # the time field and "extra" sit at least one level in
        assert code == 2
        assert "nested deeper than 32 levels" in err
    elif place == "extra" and fmt != "changes":  # an unknown field is ignored
        assert code == 0, err
