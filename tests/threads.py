"""Running test workers concurrently, with the interpreter switching threads as often as it can.

`run_concurrently` starts every worker behind one barrier (so they overlap), sets the switch
interval to 1 microsecond for the concurrent phase only, and re-raises the first exception a
worker raised. No sleeps and no timing windows: workers do a bounded amount of work each.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence

JOIN_SECONDS = 120.0


def run_concurrently(workers: Sequence[Callable[[], None]]) -> None:
    """Run each worker on its own thread, all at once; raise what the first failure raised."""
    barrier = threading.Barrier(len(workers))
    failures: list[BaseException] = []
    failures_lock = threading.Lock()

    def run(worker: Callable[[], None]) -> None:
        try:
            barrier.wait()
            worker()
        except BaseException as error:  # handed to the main thread
            with failures_lock:
                failures.append(error)
            barrier.abort()  # a worker still waiting must not wait forever

    threads = [threading.Thread(target=run, args=(worker,), daemon=True) for worker in workers]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_SECONDS)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads), "a worker never finished"
    real = [error for error in failures if not isinstance(error, threading.BrokenBarrierError)]
    if real or failures:
        raise (real or failures)[0]
