"""When the replica's markets resolve: one rule for its public APIs (replica/market_api.py) and its
own ledger (replica/state.py settle_due), so an order settles exactly when its market publishes
the winner, never at the window's end.

The delay after a window's end: Settings.resolution_delay (`--resolution-delay`) when set, else
$REPLICA_RESOLUTION_DELAY, else min(28 s, window / 4) (real markets: a median ~28 s after the
end, ../shared/design/real-site-notes.md; a quarter of a short demo window keeps demos brisk).
"""

from __future__ import annotations

import math
import os

DEFAULT_RESOLUTION_DELAY = 28.0
RESOLUTION_DELAY_ENV = "REPLICA_RESOLUTION_DELAY"


def resolution_delay(settings) -> float:
    """Seconds from a window's end to its published resolution, for these replica Settings."""
    value = getattr(settings, "resolution_delay", None)
    if value is None:
        raw = os.environ.get(RESOLUTION_DELAY_ENV, "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError:
                value = None
    if value is None or not math.isfinite(value) or value < 0:
        value = min(DEFAULT_RESOLUTION_DELAY, settings.window_seconds / 4)
    return float(value)


def resolved_at(settings, window_end: float) -> float:
    return float(window_end) + resolution_delay(settings)
