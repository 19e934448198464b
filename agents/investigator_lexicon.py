"""What an operator reads into a log line, an alert or a change: which fault it points at.

Log patterns are the messages common runtimes, drivers and proxies print for each kind
of trouble (a JVM's OutOfMemoryError, a connection pool's timeout, ENOSPC, an x509
failure...), not the embedded estate's strings. Each pattern says where the trouble is:
`own` (the service that logs it is broken) or `callee` (it is reporting a dependency,
which the line usually names).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from console.domain import Signal


@dataclass(frozen=True, slots=True)
class LogPattern:
    fault_class: str | None  # None: a symptom of some dependency, no class of its own
    locus: str  # own | callee
    pattern: re.Pattern[str]
    strength: float  # how specific the line is to that fault (1 = unmistakable)


def _p(fault: str | None, locus: str, regex: str, strength: float) -> LogPattern:
    return LogPattern(fault, locus, re.compile(regex, re.IGNORECASE), strength)


# First match wins: the specific causes before the generic symptoms.
LOG_PATTERNS: tuple[LogPattern, ...] = (
    _p("memory_leak", "own", r"OutOfMemory|out of memory|heap space|oom[- ]?kill|"
       r"memory limit exceeded|Killed process", 1.0),
    _p("disk_filling", "own", r"no space left|ENOSPC|disk (is )?full|disk quota|"
       r"could not (extend|write) file", 1.0),
    _p("connection_pool_exhaustion", "own", r"pool exhausted|connection is not available|"
       r"HikariPool|too many (database )?connections|could not obtain (a )?(database )?"
       r"connection|remaining connection slots", 1.0),
    _p("certificate_expiry", "callee", r"certificate (has )?expired|x509|"
       r"TLS handshake|SSL handshake|certificate verify failed", 1.0),
    _p("config_error", "own", r"invalid config|config(uration)? \S+ rejected|"
       r"bad config|unknown (config|setting)|configuration error", 1.0),
    _p("queue_backlog", "own", r"redeliver|poison|dead[- ]letter|consumer lag|"
       r"handler still failing", 0.8),
    _p("bad_deploy", "own", r"Exception|Traceback|panic:|segfault|unhandled (error|"
       r"exception)|KeyError|TypeError|AttributeError|undefined is not", 0.8),
    _p("network_partition", "own", r"no route to host|network is unreachable|"
       r"host unreachable|connection refused", 0.8),
    _p("slow_dependency", "own", r"slow query|duration: \d+(\.\d+)? ?ms +statement|"
       r"lock wait timeout|statement timeout", 0.8),
    _p("cpu_saturation", "own", r"spent in|cpu throttl|slow request", 0.4),
    _p("traffic_surge", "own", r"overloaded|load shedding|rate limit|too many requests|"
       r"\b429\b|queue full", 0.3),
    _p("slow_dependency", "callee", r"timeout|timed out|deadline exceeded", 0.5),
    _p(None, "callee", r"upstream|downstream|call to|calling|waiting for|\b50[0-4]\b", 0.3),
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@functools.lru_cache(maxsize=4096)
def classify_log(text: str) -> LogPattern | None:
    """The first pattern the text matches (templates repeat: the answer is cached)."""
    for pattern in LOG_PATTERNS:
        if pattern.pattern.search(text):
            return pattern
    return None


def mentions(texts: Collection[str], names: Collection[str]) -> set[str]:
    """The service names (from `names`) that appear as whole words in the texts."""
    found: set[str] = set()
    for text in texts:
        for word in _WORD.findall(text):
            word = word.rstrip(".:-")
            if word in names:
                found.add(word)
    return found


# The metric an alert watches, from its annotation or, failing that, its name.
_ALERT_METRIC_WORDS = (
    ("memory", "memory"), ("disk", "disk"), ("pool", "pool_usage"), ("queue", "queue_depth"),
    ("cache", "cache_hit_ratio"), ("hit", "cache_hit_ratio"), ("cert", "cert_expiry_hours"),
    ("tls", "cert_expiry_hours"), ("cpu", "cpu"), ("saturat", "saturation"),
    ("down", "up"), ("unreachable", "up"), ("latency", "latency_p99_ms"),
    ("slow", "latency_p99_ms"), ("error", "error_rate"), ("5xx", "error_rate"),
)
# What a firing alert on a metric suggests about its own service.
ALERT_CLASSES: Mapping[str, tuple[str, ...]] = {
    "memory": ("memory_leak",),
    "disk": ("disk_filling",),
    "pool_usage": ("connection_pool_exhaustion",),
    "queue_depth": ("queue_backlog",),
    "cache_hit_ratio": ("cache_stampede",),
    "cert_expiry_hours": ("certificate_expiry",),
    "cpu": ("cpu_saturation",),
    "saturation": ("cpu_saturation", "traffic_surge"),
    "up": ("network_partition",),
    "instances_ready": ("network_partition",),
    "latency_p99_ms": ("slow_dependency",),
    "latency_p50_ms": ("slow_dependency",),
    "error_rate": ("bad_deploy", "config_error"),
}


def alert_metric(signal: Signal) -> str:
    metric = str(signal.annotations.get("metric", "")).strip()
    if metric:
        return metric
    name = signal.name.lower()
    for word, guessed in _ALERT_METRIC_WORDS:
        if word in name:
            return guessed
    return ""


# How much a change of each kind, shortly before a service's anomaly, supports each
# fault class on that service. Rollbacks and scaling are remediations, not causes.
CHANGE_AFFINITY: Mapping[str, Mapping[str, float]] = {
    "deploy": {"bad_deploy": 1.0, "memory_leak": 1.0, "cpu_saturation": 0.3,
               "connection_pool_exhaustion": 0.3},
    "config": {"config_error": 1.0, "connection_pool_exhaustion": 0.3},
    "feature_flag": {"cpu_saturation": 1.0, "cache_stampede": 0.5, "bad_deploy": 0.2},
}
