"""How fast this server runs a model, measured once and kept: the numbers behind every
"about N s on this computer" (the cost models are :mod:`diffusion_core.app.estimate`).

:func:`speed_of` times one denoiser call at a few sizes (after a warm-up call at each, the
median of a few calls) and one picture score (PSNR + SSIM, what the Restore page computes at
every step) at two sizes. The measurement runs as a :class:`~diffusion_core.jobs.base.Job`,
in a worker thread with the PyTorch threads a run gets, because that is how the runs it
predicts are made (the same call from another thread, or with other threads, can cost half
as much or twice as much). A call costs a fixed part plus a part that grows with the pixels
it sees (batch x height x width): :class:`Speed` keeps the measured points and reads between
them along straight lines. Results are kept per model, device and the threads a run gets
(:attr:`TimingJob.label`) for the whole server process (thread-safe: visitors who ask at the
same time wait for one measurement). No streamlit here.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from diffusion_core.jobs.base import Job
from diffusion_core.system import counters
from diffusion_core.system.device import device_label
from diffusion_core.tasks.metrics import psnr, ssim

REPEATS = 3  # timed calls per size (after one warm-up call); the median is kept
MIN_TIMED_S, MAX_REPEATS = 0.1, 20  # more, up to 20, until they took 0.1 s (quick calls)
MAX_TIMED_S = 0.3  # fewer when they take longer; a warm-up this long is the measurement
# A measurement is "busy" when other work of this process ran meanwhile, or when the measuring
# thread got less than this share of the time on a CPU (another program, a browser rendering
# the page, took its core); a busy one is taken again on later requests, at most this many
# times in all, keeping the fastest time of each size
STARVED_SHARE, MAX_MEASUREMENTS = 0.8, 3
SCORE_SIDES = (128, 512)  # the sides of the colour pictures the score is timed at


@dataclass(frozen=True)
class Speed:
    """What one measurement found: seconds per denoiser call at a few pixel counts
    (batch x height x width), and seconds per picture score at a few picture sizes (values:
    C x H x W)."""

    device: str  # for people: "CPU (2 threads)", the GPU's name
    threads: int  # torch's thread count in the measuring (run-like) thread
    points: tuple[tuple[int, float], ...]  # (pixels, seconds per call), at least one
    score_points: tuple[tuple[int, float], ...]  # (values, seconds per score), at least one
    took_s: float = 0.0  # how long measuring took
    busy: bool = False  # other work took time from the measurement (the numbers may be high)
    measurements: int = 1  # measurements this one keeps the fastest times of

    def call_s(self, pixels: float) -> float:
        """Seconds of one denoiser call on ``pixels`` pixels (batch x height x width): on the
        straight line between the two measured points around it; beyond the measured
        range, on the line through the two nearest (never below zero)."""
        return interpolate(self.points, pixels)

    def score_s(self, values: float) -> float:
        """Seconds of one PSNR + SSIM of two pictures of ``values`` numbers (C x H x W), read
        between the measured sizes like :meth:`call_s`."""
        return interpolate(self.score_points, values)


def interpolate(points, x: float) -> float:
    """Piecewise-linear ``y(x)`` through ``points`` (x, y), extended past both ends along
    the end segments, and at least 0; a single point gives a line through zero."""
    pts = sorted(points)
    x = max(float(x), 0.0)
    if len(pts) == 1:
        (x0, y0), = pts
        return y0 * x / x0 if x0 > 0 else y0
    k = next((i for i in range(1, len(pts) - 1) if x < pts[i][0]), len(pts) - 1)
    (x0, y0), (x1, y1) = pts[k - 1], pts[k]
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y1
    return max(y, 0.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _median_seconds(fn: Callable[[], Any], device: torch.device, repeats: int,
                    first: float | None = None) -> float:
    """The median time of ``fn()`` after a warm-up call (the first call at a new shape pays
    once for choosing its kernels; ``first``: its time, when it was made already):
    ``repeats`` calls, more (up to :data:`MAX_REPEATS`) while they took less than
    :data:`MIN_TIMED_S` (a quick call is easily disturbed by the rest of the computer), fewer
    (at least one) once they took :data:`MAX_TIMED_S`. A warm-up call that took that long is
    the measurement itself (a slow computer is not kept waiting)."""
    first = _timed(fn, device) if first is None else first
    if first >= MAX_TIMED_S:
        return first
    times: list[float] = []
    while not times or (sum(times) < MAX_TIMED_S and (
            len(times) < repeats or (sum(times) < MIN_TIMED_S and len(times) < MAX_REPEATS))):
        times.append(_timed(fn, device))
    return statistics.median(times)


def others_running() -> bool:
    """Some other job (a run, a training, a study) is working in this process now."""
    return any(v > 0 for k, v in counters.snapshot().items()
               if k.endswith("_threads") and k != f"{TimingJob.kind}_threads")


def measure(denoiser, device: str | torch.device, shapes: list[tuple[int, ...]],
            repeats: int = REPEATS, label: str | None = None) -> Speed:
    """Time ``denoiser`` at each (N, C, H, W) of ``shapes`` (pixel counts the runs to predict
    span) and one picture score, in the calling thread; ``label`` names the device for
    people (default: :func:`~diffusion_core.system.device.device_label`). :func:`speed_of`
    is the cached, run-like way in."""
    device = torch.device(device)
    t_start, cpu_start = time.perf_counter(), time.thread_time()
    busy = others_running()
    calls = {}
    for shape in shapes:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
        sigma = torch.full((shape[0],), 0.5, device=device)
        calls[int(shape[0] * shape[-2] * shape[-1])] = functools.partial(denoiser, x, sigma)
    autocast = torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        # warm up every size first, the largest first: the first calls in a process (or
        # after larger ones) also pay for growing its memory, which a run has done already
        first = {px: _timed(calls[px], device) for px in sorted(calls, reverse=True)}
        points = [(px, _median_seconds(calls[px], device, repeats, first[px]))
                  for px in sorted(calls)]
    scores = []
    for side in SCORE_SIDES:
        a = torch.rand(3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1
        b = a.flip(-1)
        secs = _median_seconds(lambda: (psnr(a, b), ssim(a, b)), torch.device("cpu"), repeats)
        scores.append((a.numel(), secs))
    took = time.perf_counter() - t_start
    starved = device.type == "cpu" and time.thread_time() - cpu_start < STARVED_SHARE * took
    return Speed(device=label or device_label(device), threads=torch.get_num_threads(),
                 points=tuple(points), score_points=tuple(scores), took_s=took,
                 busy=busy or starved or others_running())


def fastest(kept: Speed, new: Speed) -> Speed:
    """``new`` with the faster of the two times at each size (other work only ever makes a
    measurement slower), counting both measurements."""
    def best(a, b):
        return tuple((p, min(t, dict(a).get(p, t))) for p, t in b)

    return dataclasses.replace(new, points=best(kept.points, new.points),
                               score_points=best(kept.score_points, new.score_points),
                               measurements=kept.measurements + new.measurements)


class TimingJob(Job):
    """:func:`measure` in a job's worker thread, as the runs it predicts are made. It takes
    no run slot and does not queue for the GPU: it is short, and a page waits for it."""

    kind = "timing"
    slots = None
    use_gpu_lock = False

    def __init__(self, denoiser, device, shapes: list[tuple[int, ...]], repeats: int = REPEATS):
        super().__init__(device=device)
        self.denoiser, self.shapes, self.repeats = denoiser, list(shapes), repeats
        self.result: Speed | None = None

    @property
    def label(self) -> str:
        """The device and threads a run gets here, in words (what the measurement is for)."""
        return str(getattr(self, "runs_on", None) or device_label(self.device))

    def work(self) -> bool:
        self.update(result=measure(self.denoiser, self.device, self.shapes, self.repeats,
                                   self.label))
        return False


_SPEEDS: dict[tuple, Speed] = {}
_LOCK = threading.Lock()


def speed_of(name: str, denoiser, device: str | torch.device,
             shapes: list[tuple[int, ...]]) -> Speed | None:
    """The :class:`Speed` of model ``name`` (the ``denoiser`` object loaded for it) on
    ``device`` at ``shapes``: measured on the first request (a :class:`TimingJob`), then
    kept for the process. A busy measurement (see :data:`STARVED_SHARE`) is taken again at
    a later request when no other job of this process runs, up to :data:`MAX_MEASUREMENTS`
    in all, keeping the fastest times. None if measuring failed (the model could not run
    here)."""
    job = TimingJob(denoiser, device, shapes)  # (not started unless it is needed)
    key = (name, id(denoiser), str(torch.device(device)), job.label,
           tuple(tuple(s) for s in shapes))
    with _LOCK:
        kept = _SPEEDS.get(key)
        if kept is None or (kept.busy and kept.measurements < MAX_MEASUREMENTS
                            and not others_running()):
            job.start().wait()
            if job.result is None:
                return kept
            _SPEEDS[key] = job.result if kept is None else fastest(kept, job.result)
        return _SPEEDS[key]


def known_speeds() -> list[Speed]:
    """Every measurement kept so far (for benchmarks and tests)."""
    with _LOCK:
        return list(_SPEEDS.values())


def forget_speeds() -> None:
    """Drop every kept measurement (tests; a benchmark that wants a fresh one)."""
    with _LOCK:
        _SPEEDS.clear()
