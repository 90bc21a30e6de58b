"""How long to wait before trying a throttled or failing call again: one policy for every provider.

Pauses double from FIRST to LONGEST and each is jittered between half and all
of that, so that a fleet of containers throttled at the same moment spreads
out instead of retrying in lockstep. Callers stop at their deadline.
"""

from __future__ import annotations

import random

FIRST = 0.1
LONGEST = 5.0


def pause(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    ceiling = min(LONGEST, FIRST * 2.0 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
