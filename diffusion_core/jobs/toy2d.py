"""The "Why diffusion?" page's runs as background :class:`~diffusion_core.jobs.base.Job` s,
wrapping the public API of :mod:`diffusion_core.toy2d`.

* :class:`CompareJob` trains GAN, VAE and diffusion (and optionally WGAN-GP) side by side
  on one 2-D dataset, reporting each model's latest samples and losses as it goes, then
  scores them; its ``result`` is what the page shows. The live view is published at the
  budget's snapshot steps only (``budget.snapshot_every``: every 200 steps at the page's
  defaults), never per step: the losses of the steps in between are kept aside in the
  worker thread and handed over with the next snapshot, so a page watching the run redraws
  a few times a second at most and the training keeps the CPU.
* :class:`SeedsJob` repeats that over several seeds (:func:`diffusion_core.toy2d.run_seeds`).

Both run on the CPU (the toy models are tiny; the CPU is the fastest place for them) with one
PyTorch thread (:data:`THREADS`), share the process-wide run slots, and stop between two
training steps (or two models) when asked; a stopped comparison keeps its live samples and
losses, but has no scores. No streamlit.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from diffusion_core import toy2d
from diffusion_core.jobs.base import Job

DEVICE = "cpu"
#: Networks of 3 x 128 units on batches of 256 are too small to share between threads: on the
#: 2-core development CPU the page's three models trained in 25.4 s with 2 threads against
#: 19.8 s with 1 (the GAN 14.6 s against 8.3 s), before anything else wanted a core.
THREADS = 1


@contextlib.contextmanager
def _torch_threads(n: int):
    """This worker thread's PyTorch threads are ``n`` while the block runs (the count is the
    calling thread's own; it is put back afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Stopped(Exception):
    """Raised from a toy2d callback to end its loop early (the loop has no stop flag)."""


class CompareJob(Job):
    """Train ``kinds`` side by side on ``dataset`` (with ``dataset_kwargs``, e.g. drawn
    points) for ``budget``; ``seed`` fixes the data and every model."""

    kind = "toy2d"

    def __init__(self, dataset: str, kinds, budget: toy2d.Budget, seed: int = 0,
                 dataset_kwargs: dict | None = None, label: str = "", alive=None,
                 grace_s: float | None = None):
        super().__init__(device=DEVICE, alive=alive, grace_s=grace_s)
        self.dataset, self.kinds, self.budget, self.seed = dataset, tuple(kinds), budget, int(seed)
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.label = label or dataset
        self.train_points: np.ndarray | None = None
        self.steps = {k: 0 for k in self.kinds}
        self.history: dict[str, dict[str, list[float]]] = {k: {} for k in self.kinds}
        self.samples: dict[str, np.ndarray] = {}  # the latest snapshot of each model
        self.published = 0  # how many times the live view was handed over
        self.result: dict[str, Any] | None = None
        # the worker thread's losses since the last snapshot, per model (not shown yet)
        self._pending: dict[str, dict[str, list[float]]] = {k: {} for k in self.kinds}

    def progress(self) -> dict[str, Any]:
        return {"kinds": self.kinds, "total": self.budget.steps, "steps": dict(self.steps),
                "done_steps": sum(self.steps.values()), "train": self.train_points,
                "samples": dict(self.samples),
                "history": {k: {n: list(v) for n, v in h.items()} for k, h in self.history.items()}}

    def _on_step(self, kind: str, step: int, losses: dict, snapshot) -> None:
        pending = self._pending[kind]
        for name, value in losses.items():
            pending.setdefault(name, []).append(float(value))
        if snapshot is not None:  # every snapshot_every steps, and at a model's last step
            self._publish(kind, step, snapshot)
        if self.should_stop():
            raise _Stopped

    def _publish(self, kind: str, step: int, snapshot: np.ndarray) -> None:
        """Hand ``kind``'s steps so far, its losses and its latest samples to the page."""
        mine = {name: list(values) for name, values in self.history[kind].items()}
        for name, values in self._pending[kind].items():
            mine.setdefault(name, []).extend(values)
        self._pending[kind] = {}
        # new containers each time: a page's copy made under the lock is never changed after
        self.update(steps={**self.steps, kind: step}, history={**self.history, kind: mine},
                    samples={**self.samples, kind: snapshot}, published=self.published + 1)

    def work(self) -> bool:
        train, held_out = toy2d.make_split(self.dataset, np.random.default_rng(self.seed),
                                           **self.dataset_kwargs)
        self.update(train_points=train.points)
        with _torch_threads(THREADS):
            try:
                results = toy2d.train_side_by_side(train.points, self.kinds, self.budget,
                                                   seed=self.seed, device=DEVICE,
                                                   callback=self._on_step)
            except _Stopped:
                return True
            metrics, samples = {}, {}
            for kind, res in results.items():
                metrics[kind], samples[kind] = toy2d.evaluate_result(
                    res, held_out, toy2d.eval_generator(self.seed, kind))
        self.update(result={
            "kinds": self.kinds, "dataset": self.dataset, "label": self.label, "train": train,
            "held_out": held_out, "results": results, "metrics": metrics, "samples": samples,
            "seed": self.seed, "budget": self.budget,
        })
        return False


class SeedsJob(Job):
    """Train every model in ``kinds`` once per seed in ``seeds`` and score it."""

    kind = "toy2d_seeds"

    def __init__(self, dataset: str, seeds, kinds, budget: toy2d.Budget,
                 dataset_kwargs: dict | None = None, label: str = "", alive=None,
                 grace_s: float | None = None):
        super().__init__(device=DEVICE, alive=alive, grace_s=grace_s)
        self.dataset, self.seeds, self.kinds, self.budget = dataset, tuple(seeds), tuple(kinds), budget
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.label = label or dataset
        self.done_runs, self.total_runs, self.message = 0, len(self.seeds) * len(self.kinds), ""
        self.result: dict[str, Any] | None = None

    def progress(self) -> dict[str, Any]:
        return {"done_runs": self.done_runs, "total_runs": self.total_runs,
                "message": self.message}

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.update(done_runs=done, total_runs=total, message=message)
        if self.should_stop():
            raise _Stopped

    def work(self) -> bool:
        try:
            with _torch_threads(THREADS):
                study = toy2d.run_seeds(self.dataset, self.seeds, self.kinds, self.budget,
                                        device=DEVICE, progress=self._on_progress,
                                        **self.dataset_kwargs)
        except _Stopped:
            return True
        self.update(result={"study": study, "label": self.label})
        return False
