"""Check a remediation with a PromQL query: it passed when the query returns anything.

It reuses the console's Prometheus client (`console.sources.clients.PrometheusClient`)
rather than a second one, so the answer is parsed, and its errors typed, the same way
the monitoring panes see them. That client is asynchronous while the lifecycle calls
`validate` synchronously, from a worker thread or from the GUI's own loop thread; a
private event loop on one thread owns the client (one `httpx.AsyncClient` for the
probe's life) and `validate` waits on it, which works from any thread without nesting
event loops. It only validates: a query changes nothing, so it has nothing to run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import httpx

from console.actions.base import ExecutorError, ProbeResult, StepResult
from console.sources.clients import PrometheusClient, SourceError

T = TypeVar("T")


class PrometheusProbe:
    """Probes {"kind": "promql", "query": "..."} against one Prometheus."""

    kind = "prometheus"

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus: {base_url!r} is not an http(s) URL")
        self.timeout = timeout
        self.target = f"prometheus:{base_url}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="prometheus-probe")
        self._thread.start()
        self._http = self._wait(self._new_client(), timeout)
        self.client = PrometheusClient(self._http, base_url, timeout=timeout)

    @staticmethod
    async def _new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(trust_env=False)  # made on the loop that will use it

    def _wait(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        if threading.current_thread() is self._thread:
            work.close()
            raise ExecutorError("prometheus: validate called from the probe's own loop")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ExecutorError(f"prometheus: no answer within {timeout:g}s") from None

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._wait(self._http.aclose(), self.timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
            self._loop.close()

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        if probe.get("kind") != "promql":
            raise ExecutorError(f"prometheus checks promql only, not {probe.get('kind')!r}")
        query = probe.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ExecutorError("promql: the query is empty")
        try:  # the client's own timeout bounds the request; ours bounds the wait for it
            result = self._wait(self.client.query(query), self.timeout + 5.0)
        except SourceError as exc:
            raise ExecutorError(str(exc)) from None
        try:
            values = list(result.scalars().values())
        except (AttributeError, TypeError, ValueError, IndexError):  # a string result
            values = []
        warned = f" (warnings: {'; '.join(result.warnings)})" if result.warnings else ""
        if not result.result:
            return ProbeResult(False, f"{query}: empty result{warned}")
        first = values[0] if values else None
        return ProbeResult(True, f"{query}: {len(result.result)} result(s)"
                           + (f", first {first:g}" if first is not None else "") + warned,
                           first)

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        raise ExecutorError("the prometheus executor only validates; it runs no steps")

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        raise ExecutorError("the prometheus executor only validates; it runs no steps")

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        raise ExecutorError("the prometheus executor only validates; it runs no steps")
