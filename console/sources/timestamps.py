"""Times in: one rule for every sender and file format.

A time is accepted only when it names an instant: it has a zone (a naive time means
whatever the sender's clock said, which the console cannot know), and its instant, in
UTC, lies between 0001-01-02 and 9999-12-30. The day of margin at each end is what lets
a stored time be shown in any zone and have a day added or taken away (the correlator's
windows, a timeline's range) without running off the calendar: "0001-01-01T00:00:00+05:00"
is a valid ISO 8601 string, but its UTC instant is in year 0 and Python cannot hold it.
Accepted times are returned in UTC, so what is stored and compared is one kind of value.

Numbers are taken as Unix time (seconds, or milliseconds when too large for seconds), as
pydantic reads them. Alertmanager's "no time" (0001-01-01T00:00:00Z, sent as `endsAt` of
a firing alert) is read as no time at all where a time is optional.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, TypeAdapter

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC) - timedelta(microseconds=1)
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """The instant in UTC; ValueError (pydantic reports it with the field) otherwise."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("needs a timezone (e.g. 2026-01-05T02:12:00Z or +01:00)")
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValueError(f"{value.isoformat()} is out of range: times must fall between "
                         f"{EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} in UTC")
    return instant


def _optional_end(value: datetime | None) -> datetime | None:
    if value is None or value == ZERO_TIME:
        return None
    return to_utc(value)


Timestamp = Annotated[datetime, AfterValidator(to_utc)]
"""A required time: aware, in range, returned in UTC."""

OptionalEnd = Annotated[datetime | None, AfterValidator(_optional_end)]
"""An optional time where Alertmanager's zero time also means none."""

TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
"""For a time found outside a model (a generic mapping's dotted path)."""
