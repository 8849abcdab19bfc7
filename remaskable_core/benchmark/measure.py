"""Timing and peak memory of one callable: wall-clock median over repeats after a warm-up call, and the peak memory
the calls add (CUDA: torch.cuda.max_memory_allocated; CPU: resident set size sampled by a thread)."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

RSS_SAMPLE_S = 0.002
MB = 1024 * 1024


def memory_method(device: str) -> str:
    if device == "cuda":
        return "CUDA max_memory_allocated above the allocation before the call"
    return f"peak RSS above the RSS before the call (psutil, sampled every {RSS_SAMPLE_S * 1000:.0f} ms)"


def resident_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


class PeakRSS:
    """Context manager: the highest resident set size of this process while inside, sampled by a thread."""

    def __init__(self):
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self.peak_mb = max(self.peak_mb, resident_mb())

    def __enter__(self) -> "PeakRSS":
        self.start_mb = self.peak_mb = resident_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, resident_mb())

    @property
    def added_mb(self) -> float:
        return self.peak_mb - self.start_mb


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass
class Timing:
    median_ms: float
    runs_ms: list[float]
    peak_mb: float  # memory the calls added at their peak (see memory_method)


def measure(fn: Callable[[], object], repeats: int, device: str) -> Timing:
    """Run ``fn`` once to warm up (allocator, kernel choice, lazy set-up), then ``repeats`` times."""
    fn()
    synchronize(device)
    runs = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            runs.append((time.perf_counter() - start) * 1000)
        peak = (torch.cuda.max_memory_allocated() - before) / MB
    else:
        with PeakRSS() as rss:
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                runs.append((time.perf_counter() - start) * 1000)
        peak = rss.added_mb
    return Timing(statistics.median(runs), runs, peak)
