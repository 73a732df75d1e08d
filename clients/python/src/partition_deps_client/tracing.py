"""The caller's trace context as call metadata, when OpenTelemetry is installed.

Tracing is optional (extra `tracing`: opentelemetry-api). With it, every call carries the
current context as the application's global propagator writes it (W3C `traceparent` by
default), so the server's spans join the caller's trace. Without it, nothing is added.
"""

from __future__ import annotations

try:
    from opentelemetry import propagate
except ImportError:  # the `tracing` extra is not installed
    propagate = None  # type: ignore[assignment]


def trace_metadata() -> list[tuple[str, str]]:
    """(key, value) pairs of the current trace context; [] without OpenTelemetry."""
    if propagate is None:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())
