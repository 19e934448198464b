"""What explains a suspect's load, read even where the screen found nothing to read.

A service's rising request rate is a surge entering there only when nothing beside it
carries it: a caller's own rise, or the misses of a cache beside it landing on it
(agents/investigator_scoring.py `surge_entry`). The screen picks suspects by their
newest samples and cuts them to a few, so a cache that stampeded and has since been
fixed, or a caller that is calm again, is often not among them; its past is then
unread and the datastores its misses loaded look like the door a surge came in by
(two databases scaled out after a cache's stampede was fixed). Here those few series
are read for the suspects whose request rate rose, and kept on the suspect's view as
context: they explain load, they are never candidates themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agents.investigator_metrics import MetricStat
from agents.investigator_scoring import ServiceView

# service, metric -> its stat (None: not enough samples to say)
StatReader = Callable[[str, str], MetricStat | None]


def needed(view: ServiceView, views: Mapping[str, ServiceView]) -> list[tuple[str, str]]:
    """The (service, metric) reads outside the suspects that could carry this view's
    rising request rate: its callers' and feeders' request rates, its sibling
    dependencies' cache hit ratios."""
    if view.rise("request_rate") <= 0:
        return []
    out = [(c, "request_rate") for c in (*view.callers, *view.feeders) if c not in views]
    out += [(s, "cache_hit_ratio") for s in view.siblings if s not in views]
    return out


def read_around(views: Mapping[str, ServiceView], read: StatReader) -> None:
    """Fill each suspect's `around` with the context it needs (each series read once)."""
    seen: dict[tuple[str, str], MetricStat | None] = {}
    for view in views.values():
        for key in needed(view, views):
            if key not in seen:
                seen[key] = read(*key)
            stat = seen[key]
            if stat is not None:
                view.around[key] = stat
