"""One host's day, priced by hand: several price changes, an interruption in the middle.

Host ``pr-7`` ran m5.large spot (Linux/UNIX) in us-east-1a on 2026-11-20 from 10:00 to
12:30, was interrupted, and ran again from 13:00 until deleted at 16:00. The AZ's spot
price history (USD/hour), as AWS would answer it:

    09:40  0.0400   (in force at 10:00)
    11:00  0.0450   and, newer data at the same timestamp, 0.0500 (which wins)
    12:45  0.0300   (while no instance ran; in force at 13:00)
    14:15  0.0350
    17:00  0.9000   (after the host was gone)

plus changes that must not count: another AZ, another type. On demand: 0.096/hour.

By hand:
    10:00-11:00  1.00 h x 0.0400 = 0.04000
    11:00-12:30  1.50 h x 0.0500 = 0.07500
    13:00-14:15  1.25 h x 0.0300 = 0.03750
    14:15-16:00  1.75 h x 0.0350 = 0.06125
    actual    = 0.21375  -> 0.2138 (0.21 to the cent)
    potential = 5.5 h x 0.096 = 0.528
    savings   = (1 - 0.21375 / 0.528) x 100 = 59.51704... -> 59.5170
"""

from __future__ import annotations

from datetime import datetime, timezone

from tests.harness.price_history import Change, PriceHistory

ZONE = "us-east-1a"
TYPE = "m5.large"
ON_DEMAND = 0.096


def at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


# The host's two intervals: (start, end).
RUNS = ((at(10), at(12, 30)), (at(13), at(16)))
EXPECTED = {
    "costs": {"actual": 0.2138, "potential": 0.528},
    "running": {"unit": "hours", "value": 5.5},
    "savings": {"unit": "percentage", "value": 59.517},
}


def history(page_size: int = 2) -> PriceHistory:
    changes = [
        Change(ZONE, TYPE, at(9, 40), "0.0400"),
        # AWS lists the newer of two entries with one timestamp first (newest first).
        Change(ZONE, TYPE, at(11), "0.0500"),
        Change(ZONE, TYPE, at(11), "0.0450"),
        Change(ZONE, TYPE, at(12, 45), "0.0300"),
        Change(ZONE, TYPE, at(14, 15), "0.0350"),
        Change(ZONE, TYPE, at(17), "0.9000"),
        Change("us-east-1b", TYPE, at(10, 30), "5.0000"),
        Change(ZONE, "c5.large", at(10, 30), "7.0000"),
        Change(ZONE, TYPE, at(8), "0.0100", product="Windows"),
    ]
    return PriceHistory(
        changes=changes,
        on_demand={("us-east-1", TYPE): ON_DEMAND, ("us-east-1", "c5.large"): 0.085},
        page_size=page_size,
    )
