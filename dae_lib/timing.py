"""Durations, one rule for all of them: measured on the monotonic clock (``time.perf_counter``,
which neither a clock change nor a slow machine can make negative), and written with enough digits
that a real duration is never written as 0 (a 128 px image is suppressed in a few milliseconds).

    t0 = time.perf_counter()
    ...
    row["seconds"] = report_seconds(since(t0))     # 0.004213 in a CSV
    print(f"done in {shown_seconds(since(t0))}")   # "4.2 ms" on screen
"""
from __future__ import annotations

import time

#: Decimal places of a duration in a report (CSV): microseconds, far below any real step.
REPORT_DIGITS = 6


def since(t0: float) -> float:
    """Seconds on the monotonic clock since ``t0`` (a ``time.perf_counter()`` reading)."""
    return time.perf_counter() - t0


def report_seconds(seconds: float) -> float:
    """A duration as a report stores it: seconds to the microsecond (REPORT_DIGITS)."""
    return round(float(seconds), REPORT_DIGITS)


def shown_seconds(seconds: float) -> str:
    """A duration for a person: "12 s", "1.3 s" or "4.2 ms" (never "0.0 s" for a real one)."""
    if seconds >= 10:
        return f"{seconds:.0f} s"
    if seconds >= 0.1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.2g} ms"
