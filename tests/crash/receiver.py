"""A receiver process that stores and answers deliveries but never gets to correlate
them: the test kills it (-9) after its answer, as a crash right after the 200 would.

Usage: python -m tests.crash.receiver DB_URL
Prints the receiver's URL once it listens.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Any

from console.runtime import Runtime
from console.sources.webhook import WebhookReceiver


class Stuck:
    """Stands in for the correlator: takes the batch and never returns."""

    def handle(self, signals: Any, now: datetime) -> list[Any]:
        sys.stdout.write(f"correlating {len(list(signals))}\n")
        sys.stdout.flush()
        threading.Event().wait()  # until the test's SIGKILL
        return []


def main() -> None:
    runtime = Runtime(sys.argv[1])
    runtime.correlator = Stuck()  # type: ignore[assignment]
    receiver = WebhookReceiver(runtime.service, on_stored=runtime.deferred.submit).start()
    sys.stdout.write(receiver.url + "\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
