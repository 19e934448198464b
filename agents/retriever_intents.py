"""From a question in plain language to a concrete intent, without a language model.

The parser is deliberately plain: keyword patterns pick the intent, the names of known
services, alert names and ids are picked out of the text, and a time phrase ("in the
last 30 minutes", "today", "since 02:00") becomes a window. Whatever it cannot read as a
specific question becomes the vague "what should I look at?", which the retriever turns
into a fixed set of concrete queries, so no question gets no answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

INTENTS = ("errors", "changes", "runbook", "similar", "why", "metrics", "overview")

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "few": 3, "couple": 2}
_UNIT_WORDS = {"m": "minute", "min": "minute", "mins": "minute", "minute": "minute",
               "minutes": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour",
               "hours": "hour", "d": "day", "day": "day", "days": "day", "week": "week",
               "weeks": "week"}
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_NUM = r"(\d+|an?|one|two|three|four|five|six|ten|fifteen|twenty|thirty|few|couple)"
_UNIT = r"(minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?)"
_LAST = re.compile(rf"\b(?:last|past|previous)\s+(?:{_NUM}\s*(?:of\s+)?)?{_UNIT}\b")
_AGO = re.compile(rf"\b{_NUM}\s*{_UNIT}\s+ago\b")
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_SINCE = re.compile(r"\bsince\s+" + _CLOCK + r"(?![\d.])")
_BETWEEN = re.compile(r"\bbetween\s+" + _CLOCK + r"\s+and\s+" + _CLOCK)

# Order matters: the first intent whose pattern matches wins.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("why", re.compile(r"\bwhy\b|\bexplain\b|\breason (for|behind)\b|\bwho approved\b|"
                       r"\bjustif")),
    ("runbook", re.compile(r"\b(run ?books?|play ?books?|procedures?|sop|mitigat\w*|"
                           r"remediat\w*)\b|how (do|can|should|to) (i |we )?(fix|handle|"
                           r"resolve|deal with|mitigate)|what (to|should (i|we)) do")),
    ("similar", re.compile(r"\b(similar|alike|past incidents?|previous incidents?|earlier "
                           r"incidents?|post-?mortems?|post-incident|happened before|seen "
                           r"(this|it|that) before|before like this|repeat\w*|recurr\w*)\b")),
    ("changes", re.compile(r"\b(chang\w*|deploy\w*|releas\w*|roll ?outs?|rolled out|"
                           r"config(uration)? (push|update)\w*|feature.?flags?|flipped|"
                           r"shipped|what'?s new)\b")),
    ("errors", re.compile(r"\b(errors?|exceptions?|failing|failures?|failed|5\d\d|"
                          r"stack ?traces?|crash\w*|panics?|tracebacks?)\b")),
    ("metrics", re.compile(r"\b(latency|latencies|p99|p50|cpu|memory|disk|saturation|queue|"
                           r"backlog|traffic|request rate|throughput|pool|cache|certificate|"
                           r"cert|metrics?|graphs?|how is \S+ doing|health)\b")),
    ("overview", re.compile(r"\b(look at|going on|happen\w*|status|overview|summar\w*|"
                            r"start with|where (do|should) (i|we) start|anything|priorit\w*|"
                            r"attention|what'?s up|brief me|situation)\b")),
)

_METRICS = {"latency": "latency_p99_ms", "latencies": "latency_p99_ms", "p99": "latency_p99_ms",
            "p50": "latency_p50_ms", "cpu": "cpu", "memory": "memory", "disk": "disk",
            "saturation": "saturation", "queue": "queue_depth", "backlog": "queue_depth",
            "traffic": "request_rate", "throughput": "request_rate",
            "request rate": "request_rate", "pool": "pool_usage", "cache": "cache_hit_ratio",
            "certificate": "cert_expiry_hours", "cert": "cert_expiry_hours",
            "error rate": "error_rate"}
_STOP = frozenset({
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "of", "for", "to", "in", "on",
    "at", "by", "with", "about", "and", "or", "what", "whats", "what's", "which", "who", "how",
    "does", "do", "did", "say", "says", "said", "tell", "me", "show", "give", "list", "find",
    "runbook", "runbooks", "playbook", "playbooks", "procedure", "procedures", "sop", "there",
    "any", "this", "that", "it", "its", "we", "i", "should", "can", "could", "would", "our", "us",
    "please", "fix", "handle", "resolve", "mitigate", "mitigation", "deal", "when", "where", "why",
    "there's", "here", "from", "into", "out", "up", "down", "all", "some", "recent", "latest",
    "incident", "alert", "issue", "problem", "action", "taken", "look", "like", "happening",
})


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    label: str  # how the answer names it: "the last hour", "today", "since 02:00"


@dataclass(frozen=True, slots=True)
class Intent:
    kind: str  # one of INTENTS
    question: str
    services: tuple[str, ...] = ()
    window: Window | None = None  # None: the intent's own default
    topic: tuple[str, ...] = ()  # keywords (runbook, similar)
    alerts: tuple[str, ...] = ()  # alert names named in the question
    metric: str | None = None
    incident_id: int | None = None
    execution_id: int | None = None
    recommendation_id: int | None = None
    vague: bool = False  # nothing specific was recognised


def _number(text: str | None) -> int:
    if not text:
        return 1
    return int(text) if text.isdigit() else _NUMBERS[text]


def _clock(hour: str, minute: str | None, half: str | None) -> time | None:
    h, m = int(hour), int(minute or 0)
    if half == "pm" and h < 12:
        h += 12
    elif half == "am" and h == 12:
        h = 0
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def _on_or_before(now: datetime, at: time) -> datetime:
    """The last moment the clock read `at` (today, or yesterday if that is still ahead)."""
    moment = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return moment - timedelta(days=1) if moment > now else moment


def parse_window(text: str, now: datetime) -> Window | None:
    """A time phrase of the question as a window ending now (None: no time phrase)."""
    low = text.lower()
    if match := _LAST.search(low):
        n, unit = _number(match.group(1)), _UNIT_WORDS[match.group(2)]
        label = f"the last {unit}" if n == 1 else f"the last {n} {unit}s"
        return Window(now - timedelta(seconds=n * _SECONDS[unit]), now, label)
    if match := _AGO.search(low):
        n, unit = _number(match.group(1)), _UNIT_WORDS[match.group(2)]
        label = f"since {n} {unit}{'s' if n != 1 else ''} ago"
        return Window(now - timedelta(seconds=n * _SECONDS[unit]), now, label)
    if match := _BETWEEN.search(low):
        first, second = _clock(*match.group(1, 2, 3)), _clock(*match.group(4, 5, 6))
        if first is not None and second is not None:
            end = _on_or_before(now, second)
            start = _on_or_before(end, first)
            return Window(start, end, f"between {first:%H:%M} and {second:%H:%M} UTC")
    if match := _SINCE.search(low):
        at = _clock(*match.group(1, 2, 3))
        if at is not None:
            return Window(_on_or_before(now, at), now, f"since {at:%H:%M} UTC")
    if re.search(r"\byesterday\b", low):
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(midnight - timedelta(days=1), midnight, "yesterday")
    if re.search(r"\b(today|tonight|this morning)\b", low):
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(midnight, now, "today")
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9_.-]*", text.lower())


def split_name(name: str) -> set[str]:
    """Keywords of an alert name, fault class or id: `DiskSpaceLow` -> disk, space, low."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if len(w) > 1}


def keywords(text: str) -> set[str]:
    """The words of a text worth matching on (no stop words, crude singulars)."""
    out = set()
    for word in re.findall(r"[A-Za-z0-9_]+", text):
        for part in split_name(word) if not word.islower() else {word.lower()}:
            if part in _STOP or len(part) < 2:
                continue
            out.add(part[:-1] if part.endswith("s") and len(part) > 3 else part)
    return out


def _service_mentions(low: str, known: Sequence[str]) -> tuple[str, ...]:
    found: list[str] = []
    for name in sorted(known, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9_-]){re.escape(name.lower())}(?![a-z0-9_-])", low) and \
                not any(name in other for other in found):
            found.append(name)
    return tuple(sorted(found, key=low.find))


def parse(question: str, *, now: datetime, services: Sequence[str] = (),
          alert_names: Sequence[str] = ()) -> Intent:
    """Read one question. `services` and `alert_names` are the names the store knows."""
    low = " ".join(question.lower().split())
    kind = next((name for name, pattern in _PATTERNS if pattern.search(low)), "overview")
    vague = not any(pattern.search(low) for _, pattern in _PATTERNS)
    incident = re.search(r"\bincident\s*#?\s*(\d+)\b", low)
    execution = re.search(r"\b(?:execution|action|run)\s*#?\s*(\d+)\b", low)
    recommendation = re.search(r"\b(?:recommendation|rec|proposal)\s*#?\s*(\d+)\b", low)
    alerts = tuple(a for a in alert_names
                   if re.search(rf"\b{re.escape(a.lower())}\b", low))
    metric = next((m for word, m in sorted(_METRICS.items(), key=lambda kv: -len(kv[0]))
                   if re.search(rf"\b{word}\b", low)), None)
    mentioned = _service_mentions(low, services)
    topic_text = question
    if kind == "runbook":
        tail = re.search(r"\b(?:for|about|on|when|with|if)\b\s+(.+)$", question, re.I)
        topic_text = tail.group(1) if tail else question
    topic = tuple(sorted(keywords(topic_text) - {s.lower() for s in mentioned}))
    return Intent(kind=kind, question=question, services=mentioned,
                  window=parse_window(low, now), topic=topic, alerts=alerts, metric=metric,
                  incident_id=int(incident.group(1)) if incident else None,
                  execution_id=int(execution.group(1)) if execution else None,
                  recommendation_id=int(recommendation.group(1)) if recommendation else None,
                  vague=vague)


def describe(window: Window, now: datetime) -> str:
    if window.label.startswith(("the last", "since", "between", "today", "yesterday")):
        return window.label
    return f"{fmt_time(window.start, now)} to {fmt_time(window.end, now)}"


def fmt_time(at: datetime, now: datetime) -> str:
    """HH:MM UTC on the day of `now`, the date as well otherwise."""
    if at.date() == now.date():
        return f"{at:%H:%M} UTC" if at.second == 0 else f"{at:%H:%M:%S} UTC"
    return f"{at:%Y-%m-%d %H:%M} UTC"
