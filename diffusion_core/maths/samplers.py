"""The sampler contract: one signature, one step record, one registry (k-diffusion style).

Every sampler works in the "variance exploding" coordinates of EDM: the state is
``y = x_t / sqrt(alpha_bar_t)`` at noise level ``sigma_t`` and the denoiser returns the
predicted clean image. ``sigmas`` is a decreasing 1-D tensor of the noise levels to visit;
the last entry is normally 0 (the clean image). A DDPM/DDIM state converts with
``to_vp(y, sigma) = y / sqrt(1 + sigma^2)``.

    sampler(denoiser, y, sigmas, generator=None, callback=None, **options) -> y_final

* ``denoiser`` is anything that satisfies :class:`Denoiser`: ``D(x, sigma) -> x0_hat``.
* ``callback(info)`` is called once per step with a :class:`StepInfo` (the same record every
  layer above passes on, each adding its own fields). A callback may raise
  :class:`StopSampling` to end early; the sampler then returns the latest x0_hat.
* Each sampler is described once, by a :class:`SamplerSpec` in :data:`SPECS` (label, short
  name, model calls per step, default spacing of the noise levels, options it takes, chart
  colour); the other tables here are derived from the specs.
* :func:`sample` runs a sampler by name and is the one place where options a sampler does not
  take (``eta`` for Heun, say) are dropped; :func:`generate` is the one route from pure
  noise to pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch

from diffusion_core.maths.schedules import Schedule
from diffusion_core.units import SIGMA_MAX, SIGMA_MIN


class StopSampling(Exception):
    """Raised by a callback to stop a sampler early (the partial result is kept)."""


@runtime_checkable
class Denoiser(Protocol):
    """What every sampler and task calls: ``D(x, sigma) -> x0_hat``.

    ``x`` is a (N, C, H, W) state at noise level ``sigma`` (a tensor of N levels, in the
    model's [-1, 1] units) and the result is the estimate of the clean picture, same shape.
    A plain function or an ``nn.Module`` both fit."""

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


class DenoiserWrapper(torch.nn.Module):
    """Base for a denoiser that wraps another (tiling, counting calls): it keeps the wrapped
    model's ``channels`` and ``sigma_data``, and subclasses define ``forward(x, sigma)``."""

    def __init__(self, denoiser: Denoiser):
        super().__init__()
        self.den = denoiser

    @property
    def channels(self) -> int:
        return int(getattr(self.den, "channels", 3))

    @property
    def sigma_data(self) -> float:
        return float(getattr(self.den, "sigma_data", 0.5))


class Guided(DenoiserWrapper):
    """Classifier-free guidance (Ho & Salimans 2022) as a plain denoiser, so every sampler
    in :data:`SPECS` runs it unchanged.

    ``Guided(denoiser, label, w)(x, sigma) = uncond + w * (cond - uncond)`` where ``cond`` is
    the conditional network's x0 guess for ``label`` and ``uncond`` its guess with no label:
    w = 1 is the plain conditional model, w = 0 the unconditional one, w > 1 pushes past the
    conditional guess, away from the unconditional one. ``label`` is one class index or one
    per picture (N,); a negative label means "anything" (no label). Both guesses come from
    ONE batched call of the wrapped denoiser (a 2N batch; N when w is 0 or 1, where one guess
    is not needed; ``both=True`` computes both guesses at every w). After each call
    ``last_cond`` and ``last_uncond`` hold the two guesses (None where not computed), for
    pages that show them."""

    def __init__(self, denoiser: Denoiser, label, w: float = 1.0, both: bool = False):
        super().__init__(denoiser)
        self.label = torch.as_tensor(label, dtype=torch.long).reshape(-1)
        self.w = float(w)
        self.both = bool(both)
        self.last_cond: torch.Tensor | None = None
        self.last_uncond: torch.Tensor | None = None

    def labels_for(self, n: int, device) -> torch.Tensor:
        lab = self.label.to(device)
        if lab.numel() == 1:
            return lab.expand(n)
        if lab.numel() != n:
            raise ValueError(f"{lab.numel()} labels for {n} pictures")
        return lab

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        cond_labels = self.labels_for(n, x.device)
        none = torch.full_like(cond_labels, -1)
        if self.w == 1.0 and not self.both:
            self.last_cond, self.last_uncond = self.den(x, sigma, cond_labels), None
            return self.last_cond
        if self.w == 0.0 and not self.both:
            self.last_cond, self.last_uncond = None, self.den(x, sigma, none)
            return self.last_uncond
        sig = torch.as_tensor(sigma, device=x.device).reshape(-1)
        sig = sig.expand(n) if sig.numel() == 1 else sig
        both = self.den(torch.cat([x, x]), torch.cat([sig, sig]), torch.cat([cond_labels, none]))
        cond, uncond = both[:n], both[n:]
        self.last_cond, self.last_uncond = cond, uncond
        return uncond + self.w * (cond - uncond)


# ============================================================================ the step record


@dataclass(frozen=True, eq=False)
class StepInfo:
    """What a callback is told, at every layer, after each step (or model call).

    The sampler fills the first six fields. The layers above add theirs with
    ``dataclasses.replace`` and pass the same record on:

    * restore: ``step`` (UI noise step of ``x``), ``x_t`` (the DDPM-space state) and
      ``x0_hat`` (the estimate), both (C, H, W) on the CPU;
    * blind denoising: ``step`` (its one-shot call has ``i = 0``, ``n = 1``);
    * inpainting: ``i``/``n`` count model calls, plus ``level`` (index into the levels),
      ``jumps`` (re-noisings so far) and ``composite`` (the estimate with the known pixels
      pasted in, (C, H, W) on the CPU);
    * the steps study: ``i``/``n`` count model calls, plus ``calls_done``, ``calls_total``,
      ``phase`` ("reference" or "run"), ``sampler``, ``steps`` and ``row`` (a finished row).

    ``info["i"]`` and ``info.get("row")`` read fields as in a dict, for callbacks written
    against the earlier dicts; a field that is None counts as absent for ``get``."""

    i: int  # 0-based index of this step (or model call)
    n: int  # number of steps (or model calls) planned
    sigma: float  # noise level of ``x`` (before the step)
    sigma_next: float = math.nan  # the level the step moves to
    x: torch.Tensor | None = None  # the state before the step (batched, on the device)
    denoised: torch.Tensor | None = None  # the model's x0_hat for ``x``
    # restore and blind denoising
    step: int | None = None
    x_t: torch.Tensor | None = None
    x0_hat: torch.Tensor | None = None
    # inpainting
    level: int | None = None
    jumps: int | None = None
    composite: torch.Tensor | None = None
    # the steps study
    calls_done: int | None = None
    calls_total: int | None = None
    phase: str | None = None
    sampler: str | None = None
    steps: int | None = None
    row: dict | None = None

    @property
    def eps(self) -> torch.Tensor | None:
        """The noise estimate eps_hat = (x - x0_hat) / sigma (zeros at sigma 0)."""
        if self.x is None or self.denoised is None:
            return None
        if self.sigma > 0:
            return (self.x - self.denoised) / self.sigma
        return torch.zeros_like(self.x)

    def __getitem__(self, key: str) -> Any:
        if key == "eps" or key in _STEP_FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key == "eps" or key in _STEP_FIELDS) \
            and self[key] is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if (key == "eps" or key in _STEP_FIELDS) else None
        return default if value is None else value


_STEP_FIELDS = frozenset(f.name for f in fields(StepInfo))

StepCallback = Callable[[StepInfo], None]


# ============================================================================ noise levels


def to_vp(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """VE state y at level sigma -> DDPM state x_t = sqrt(alpha_bar) * y."""
    return y / math.sqrt(1.0 + float(sigma) ** 2)


def from_vp(x_t: torch.Tensor, sigma: float) -> torch.Tensor:
    return x_t * math.sqrt(1.0 + float(sigma) ** 2)


def spaced_timesteps(t_start: int, steps: int) -> list[int]:
    """``steps`` distinct timesteps from ``t_start`` down to 0 (inclusive), evenly spaced.

    The number returned is exactly ``min(steps, t_start + 1)``; t_start < 0 gives []."""
    if t_start < 0 or steps <= 0:
        return []
    steps = min(int(steps), t_start + 1)
    if steps == 1:
        return [int(t_start)]
    ts = np.round(np.linspace(t_start, 0, steps)).astype(int)
    # np.round of an even grid with steps <= t_start + 1 never collides, but be safe
    out: list[int] = []
    for t in ts:
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def schedule_sigmas(schedule: Schedule, t_start: int, steps: int) -> tuple[torch.Tensor, list]:
    """Noise levels (float64 -> float32 tensor, ending with 0) for a DDPM/DDIM run from t_start
    with ``steps`` denoiser calls, and the timesteps they correspond to."""
    ts = spaced_timesteps(t_start, steps)
    s = [float(schedule.sigmas[t]) for t in ts] + [0.0]
    return torch.tensor(s, dtype=torch.float64).float(), ts


#: Which noise levels a run visits: "uniform" = evenly spaced DDPM timesteps (DDPM/DDIM as
#: published); "karras" = the same number of levels spaced as in Karras et al. 2022
#: (rho = 7, dense near the clean end), where the higher-order solvers are far more accurate
#: with few steps (bench/results/speed.md, "Which noise levels to visit").
SPACINGS = ("uniform", "karras")


def karras_schedule_sigmas(schedule: Schedule, t_start: int, steps: int,
                           rho: float = 7.0) -> tuple[torch.Tensor, list]:
    """Like :func:`schedule_sigmas` (same number of levels, the same first and last level),
    with the levels in between spaced as in Karras et al. 2022; the timesteps returned are the
    nearest DDPM timesteps (for labels only)."""
    ts_uniform = spaced_timesteps(t_start, steps)
    n = len(ts_uniform)
    if n <= 2:
        return schedule_sigmas(schedule, t_start, steps)
    table = np.asarray(schedule.sigmas, dtype=np.float64)
    hi, lo = float(table[ts_uniform[0]]), float(table[ts_uniform[-1]])
    i = np.arange(n, dtype=np.float64) / (n - 1)
    s = (hi ** (1 / rho) + i * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    s[0], s[-1] = hi, lo
    log_table = np.log(np.maximum(table, 1e-300))
    ts = [int(np.argmin(np.abs(log_table - math.log(v)))) for v in s]
    return torch.tensor(list(s) + [0.0], dtype=torch.float64).float(), ts


def spaced_sigmas(schedule: Schedule, t_start: int, steps: int,
                  spacing: str = "uniform") -> tuple[torch.Tensor, list]:
    """The levels of a run from timestep ``t_start`` with ``steps`` steps, spaced as named
    ("uniform": :func:`schedule_sigmas`, "karras": :func:`karras_schedule_sigmas`)."""
    if spacing not in SPACINGS:
        raise ValueError(f"Unknown spacing {spacing!r}; choose one of {', '.join(SPACINGS)}.")
    if spacing == "karras":
        return karras_schedule_sigmas(schedule, t_start, steps)
    return schedule_sigmas(schedule, t_start, steps)


def edm_sigmas(n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
               rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) noise levels (n levels and a final 0)."""
    i = torch.arange(n, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + i / max(n - 1, 1) * (sigma_min ** (1 / rho)
                                                        - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)]).float()


# ============================================================================ the samplers


def _call(denoiser: Denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    return denoiser(x, torch.full((x.shape[0],), float(sigma), device=x.device))


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype,
                       device=generator.device).to(x.device)


#: A sampler's update rule: (i, x, denoised, sigma, sigma_next) -> the next state
StepRule = Callable[[int, torch.Tensor, torch.Tensor, float, float], torch.Tensor]


def _run_steps(denoiser: Denoiser, x: torch.Tensor, sigmas, callback: StepCallback | None,
               rule: StepRule) -> torch.Tensor:
    """The loop every sampler shares: for each pair of levels, call the model (not at sigma
    0), tell the callback, then let ``rule`` move the state. A :class:`StopSampling` from the
    callback ends the run with the latest x0_hat."""
    levels = [float(s) for s in sigmas]
    n = len(levels) - 1
    denoised = x
    try:
        for i in range(n):
            s, s_next = levels[i], levels[i + 1]
            denoised = _call(denoiser, x, s) if s > 0 else x
            if callback is not None:
                callback(StepInfo(i, n, s, s_next, x, denoised))
            x = rule(i, x, denoised, s, s_next)
    except StopSampling:
        return denoised
    return x


def ddim_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, sigma_next: float,
              eta: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """One DDIM move of the state ``x`` at level ``sigma`` to ``sigma_next``, given the
    model's x0_hat ``denoised``: keep the predicted noise direction, scaled to the new level,
    and with ``eta > 0`` replace part of it by fresh noise (``eta = 1``: DDPM's posterior
    variance). Going to (or starting from) sigma 0 returns x0_hat. Shared by DDIM and
    RePaint (:mod:`diffusion_core.tasks.inpaint`)."""
    s, s_next = float(sigma), float(sigma_next)
    if s_next <= 0 or s <= 0:
        return denoised
    eps = (x - denoised) / s
    c = 0.0
    if eta > 0:
        c = min(s_next, eta * math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0)))
    x = denoised + math.sqrt(max(s_next**2 - c**2, 0.0)) * eps
    if c > 0:
        x = x + c * _randn_like(x, generator)
    return x


@torch.no_grad()
def sample_ddim(denoiser, x, sigmas, generator=None, callback=None, eta: float = 0.0):
    """DDIM (Song et al. 2021). eta = 0: deterministic; eta = 1: the same transitions as
    DDPM's ancestral sampler with the posterior variance."""

    def rule(i, x, denoised, s, s_next):
        return ddim_step(x, denoised, s, s_next, eta, generator)

    return _run_steps(denoiser, x, sigmas, callback, rule)


@torch.no_grad()
def sample_ddpm(denoiser, x, sigmas, generator=None, callback=None):
    """DDPM ancestral sampling (Ho et al. 2020): x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), the
    posterior with variance beta~_t, written for any (possibly strided) pair of levels."""

    def rule(i, x, denoised, s, s_next):
        if s_next <= 0 or s <= 0:
            return denoised
        # VP quantities: alpha_bar = 1 / (1 + sigma^2)
        ab, ab_prev = 1.0 / (1.0 + s * s), 1.0 / (1.0 + s_next * s_next)
        alpha = ab / ab_prev
        beta = 1.0 - alpha
        x_t = x * math.sqrt(ab)
        c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
        ct = math.sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)
        var = beta * (1.0 - ab_prev) / (1.0 - ab)
        x_prev = c0 * denoised + ct * x_t + math.sqrt(var) * _randn_like(x, generator)
        return x_prev / math.sqrt(ab_prev)

    return _run_steps(denoiser, x, sigmas, callback, rule)


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, generator=None, callback=None):
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1
    without churn). Uses 2 denoiser calls per step except the last."""

    def rule(i, x, denoised, s, s_next):
        if s <= 0:
            return x
        d = (x - denoised) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            denoised2 = _call(denoiser, x_next, s_next)
            d2 = (x_next - denoised2) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d2)
        return x_next

    return _run_steps(denoiser, x, sigmas, callback, rule)


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022): a multistep 2nd-order solver with one denoiser
    call per step, written in log-sigma time."""
    last: dict[str, Any] = {"denoised": None, "h": None}

    def rule(i, x, denoised, s, s_next):
        if s_next <= 0 or s <= 0:
            return denoised
        t, t_next = -math.log(s), -math.log(s_next)
        h = t_next - t
        if last["denoised"] is None or last["h"] is None:
            d = denoised
        else:
            r = last["h"] / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * last["denoised"]
        last["denoised"], last["h"] = denoised, h
        return (s_next / s) * x - math.expm1(-h) * d

    return _run_steps(denoiser, x, sigmas, callback, rule)


# ============================================================================ the registry


@dataclass(frozen=True)
class SamplerSpec:
    """Everything the app knows about one sampler, in one place."""

    name: str  # the registry key, e.g. "ddim"
    fn: Callable[..., torch.Tensor]  # sampler(denoiser, x, sigmas, generator, callback, **options)
    label: str  # for menus: what it is, in a few words
    short_name: str  # for tables and chart legends
    calls_per_step: int  # model calls per step (the last step, to sigma 0, makes one)
    spacing: str  # default noise levels: "uniform" or "karras" (see SPACINGS)
    options: tuple[str, ...] = ()  # keyword options ``fn`` takes, e.g. ("eta",)
    colour: str = "#7f7f7f"  # chart colour
    # adds fresh noise at every step whatever its options (DDPM): its runs scatter around the
    # answer instead of converging to the deterministic one
    stochastic: bool = False

    def takes(self, option: str) -> bool:
        return option in self.options

    def pick_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options this sampler takes; the rest are dropped (see :func:`sample`)."""
        return {k: v for k, v in options.items() if k in self.options}

    def model_calls(self, n_steps: int) -> int:
        """Network evaluations of ``n_steps`` steps ending at the clean image (sigma 0):
        ``calls_per_step`` per step, one on the last step (Heun skips its corrector there)."""
        if n_steps <= 0:
            return 0
        return self.calls_per_step * (int(n_steps) - 1) + 1


#: The samplers by name, in the order menus list them. Add one with :func:`register_sampler`.
SPECS: dict[str, SamplerSpec] = {}
# derived from SPECS (kept up to date by register_sampler), for code that wants one column
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {}
SAMPLER_LABELS: dict[str, str] = {}
SHORT_NAMES: dict[str, str] = {}
SAMPLER_COLOURS: dict[str, str] = {}


def register_sampler(spec: SamplerSpec) -> SamplerSpec:
    """Add (or replace) a sampler; every table above and every menu built from them sees it."""
    if spec.spacing not in SPACINGS:
        raise ValueError(f"Unknown spacing {spec.spacing!r}; choose one of {', '.join(SPACINGS)}.")
    if spec.calls_per_step < 1:
        raise ValueError("A sampler makes at least one model call per step.")
    SPECS[spec.name] = spec
    SAMPLERS[spec.name] = spec.fn
    SAMPLER_LABELS[spec.name] = spec.label
    SHORT_NAMES[spec.name] = spec.short_name
    SAMPLER_COLOURS[spec.name] = spec.colour
    return spec


def get_sampler(name: str) -> SamplerSpec:
    """The spec of sampler ``name``; ValueError ("Unknown sampler ...") if there is none."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown sampler {name!r}") from None


def default_spacing(sampler: str) -> str:
    """The sampler's default noise levels: Karras spacing for the higher-order solvers,
    timestep spacing for DDPM/DDIM."""
    return get_sampler(sampler).spacing


register_sampler(SamplerSpec("ddim", sample_ddim, "DDIM (deterministic when eta = 0)", "DDIM",
                             1, "uniform", ("eta",), "#1f77b4"))
register_sampler(SamplerSpec("ddpm", sample_ddpm, "DDPM (ancestral, adds fresh noise each step)",
                             "DDPM", 1, "uniform", (), "#d62728", stochastic=True))
register_sampler(SamplerSpec("dpmpp_2m", sample_dpmpp_2m, "DPM-Solver++ (2M), high-order",
                             "DPM-Solver++", 1, "karras", (), "#2ca02c"))
register_sampler(SamplerSpec("heun", sample_heun, "Heun / EDM, 2nd order (2 model calls per step)",
                             "Heun", 2, "karras", (), "#ff7f0e"))


# ============================================================================ running one


def sample(sampler: str, denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
           generator: torch.Generator | None = None, callback: StepCallback | None = None,
           **options: Any) -> torch.Tensor:
    """Run the sampler named ``sampler`` from state ``x`` through the levels ``sigmas``.

    The one place where options a sampler does not take are dropped: a caller may pass the
    same settings (``eta=...``) whichever sampler was chosen."""
    spec = get_sampler(sampler)
    return spec.fn(denoiser, x, sigmas, generator=generator, callback=callback,
                   **spec.pick_options(options))


def generate(denoiser: Denoiser, shape, steps: int = 50, sampler: str = "heun",
             seed: int = 0, generator: torch.Generator | None = None,
             device: str | torch.device = "cpu", callback: StepCallback | None = None,
             **options: Any) -> torch.Tensor:
    """Pictures from pure noise: the one generation route (the ``generate`` command, the
    digits check, training previews).

    Draws ``x ~ N(0, sigma_max^2)`` of ``shape`` (N, C, H, W) on the CPU and runs ``sampler``
    down the EDM levels :func:`edm_sigmas` (``steps`` levels and a final 0). ``generator``
    draws the start and then any fresh noise the sampler adds (pass one to continue a stream
    across batches); without one, a new generator seeded with ``seed``. Returns the pictures
    (N, C, H, W) on the CPU, not clipped."""
    g = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    device = torch.device(device)
    sig = edm_sigmas(max(int(steps), 1))
    x = (torch.randn(tuple(shape), generator=g) * sig[0]).to(device)
    with torch.inference_mode():
        out = sample(sampler, denoiser, x, sig.to(device), generator=g, callback=callback,
                     **options)
    return out.cpu()
