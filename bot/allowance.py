"""Each person's allowance of commands: a sliding window, one notice past it, then quiet."""

from __future__ import annotations

import enum
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    """What to do with a command, given the person's allowance."""

    ANSWER = "answer"
    NOTICE = "notice"  # over the allowance: tell them once when they can go on
    QUIET = "quiet"  # told already: nothing until the allowance is back


@dataclass(slots=True)
class _Usage:
    spent: deque[tuple[float, float]] = field(default_factory=deque)  # (when, weight)
    total: float = 0.0
    told: bool = False


class Allowance:
    """Allow each person ``limit`` commands in any ``window`` seconds, kept in memory only.

    Only answered commands count, so a person who keeps trying past the limit waits no
    longer for it. A button press (such as turning a page) counts a quarter. At most
    ``people`` persons are remembered; the one not heard from longest goes first, and
    someone whose window is empty costs nothing.
    """

    BUTTON_WEIGHT = 0.25

    def __init__(
        self,
        limit: int = 20,
        window: float = 30.0,
        *,
        people: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.people, self.clock = limit, window, people, clock
        self._usage: OrderedDict[Hashable, _Usage] = OrderedDict()

    def check(self, person: Hashable, *, button: bool = False) -> tuple[Verdict, float]:
        """Count a command if it is within the allowance; return the verdict and the wait."""
        now = self.clock()
        usage = self._usage.pop(person, None) or _Usage()
        while usage.spent and usage.spent[0][0] <= now - self.window:
            usage.total -= usage.spent.popleft()[1]
        weight = self.BUTTON_WEIGHT if button else 1.0
        verdict, wait = Verdict.ANSWER, 0.0
        if usage.total + weight <= self.limit + 1e-9:
            usage.spent.append((now, weight))
            usage.total += weight
            usage.told = False
        else:
            verdict = Verdict.QUIET if usage.told else Verdict.NOTICE
            usage.told = True
            wait = self._wait(usage, weight, now)
        if usage.spent or usage.told:
            self._usage[person] = usage
            while len(self._usage) > self.people:
                self._usage.popitem(last=False)
        return verdict, wait

    def __len__(self) -> int:
        return len(self._usage)

    def _wait(self, usage: _Usage, weight: float, now: float) -> float:
        """Return the seconds until enough of the window has passed to allow ``weight``."""
        freed = usage.total
        for when, spent in usage.spent:
            freed -= spent
            if freed + weight <= self.limit + 1e-9:
                return max(0.0, when + self.window - now)
        return self.window
