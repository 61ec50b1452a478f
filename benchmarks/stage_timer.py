"""Wall and CPU seconds per stage: shared by ``side_by_side.py`` and its Gammapy twin.

No dependency beyond the standard library, so that the Gammapy environment (which has no
gammaxr) imports it too.
"""

from __future__ import annotations

import time


class Stages:
    """Wall and CPU (``time.process_time``: all threads of the process) seconds per stage."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._cpu0 = time.process_time()

    def add(self, stage: str, t0: float) -> float:
        now, cpu = time.perf_counter(), time.process_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - t0
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu - self._cpu0
        self._cpu0 = cpu
        return now

    def restart(self) -> float:
        """Start timing anew (what ran since the last stage is not counted)."""
        self._cpu0 = time.process_time()
        return time.perf_counter()

    def best(self, stage: str, calls: int, func):
        """Call ``func()`` ``calls`` times in a row; the stage's seconds are those of the
        fastest call (and its CPU seconds). Returns the last call's result."""
        for _ in range(calls):
            t0 = self.restart()
            result = func()
            now, cpu = time.perf_counter(), time.process_time()
            if stage not in self.seconds or now - t0 < self.seconds[stage]:
                self.seconds[stage], self.cpu[stage] = now - t0, cpu - self._cpu0
            self._cpu0 = cpu
        return result

    def result(self, totals: dict) -> dict:
        return {"seconds": self.seconds, "cpu": self.cpu, "totals": totals}
