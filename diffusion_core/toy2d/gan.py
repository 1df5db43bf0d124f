"""Generative adversarial networks for 2-D data: a vanilla GAN and WGAN-GP.

The vanilla GAN uses the standard non-saturating loss (Goodfellow et al., 2014), Adam with
the DCGAN betas (0.5, 0.999) and one discriminator step per generator step. Its learning
rates follow the two time-scale update rule (TTUR, Heusel et al., 2017): the discriminator
learns faster (1e-3) than the generator (DCGAN's 2e-4), so that it can tell the sharp modes
of these toys from a blur. Measured on the ring over 10 seeds (bench/results/toy2d_seeds.md,
which also lists the other settings tried): with one shared rate of 2e-4 the GAN never
sharpened in 2000 steps (a wide cloud hopping round the ring, 0 % of samples near a mode in
8 of 10 seeds), and the unrolled-GAN paper's ring settings (Metz et al., 2017: generator
2x128, discriminator 1x128, z 256, lr 1e-4) did not train in this budget either. With TTUR
63-96 % of the samples lie on a mode in every seed, and the GAN shows its known failure,
mode collapse: 4.3 of the 8 modes on average, all 8 in 2 of 10 seeds.

WGAN-GP (Gulrajani et al., 2017) is the usual "fixed" GAN: a critic trained ``n_critic``
times per generator step with a gradient penalty, Adam lr 1e-4, betas (0.5, 0.9) and penalty
weight 0.1, the settings of the authors' toy-data script (their image experiments use 10; on
our 2-D ring 10 covered 0/8 and 7/8 modes in two seeds, 0.1 covered 8/8 twice).
One "step" of the shared budget is one generator update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .common import Toy2DModel, count_params, make_mlp, randn

__all__ = ["GAN", "WGANGP"]

_ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


class GAN(Toy2DModel):
    """Vanilla GAN with the non-saturating generator loss.

    ``disc_hidden``/``disc_depth`` default to the generator's size, ``disc_lr`` to ``lr``
    when given as ``None``; ``d_steps`` discriminator updates per generator update.
    """

    kind = "gan"
    label = "GAN"

    def __init__(self, generator: torch.Generator, device: torch.device | str = "cpu", *,
                 hidden: int = 128, depth: int = 3, z_dim: int = 8, lr: float = 2e-4,
                 disc_lr: float | None = 1e-3, betas: tuple[float, float] = (0.5, 0.999),
                 d_steps: int = 1, disc_hidden: int | None = None,
                 disc_depth: int | None = None, disc_act: str = "leaky_relu"):
        super().__init__(device)
        self.z_dim = z_dim
        self.d_steps = max(int(d_steps), 1)
        act = _ACTIVATIONS[disc_act]
        self.gen = make_mlp(z_dim, hidden, depth, 2, nn.ReLU, generator)
        self.disc = make_mlp(2, disc_hidden or hidden, disc_depth or depth, 1, act, generator)
        self.to(self.device)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=disc_lr or lr, betas=betas)

    def param_counts(self) -> dict[str, int]:
        g, d = count_params(self.gen), count_params(self.disc)
        return {"generator": g, "discriminator": d, "total": g + d}

    def _fake(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.gen(randn((n, self.z_dim), generator, self.device))

    def train_step(self, next_batch: Callable[[], torch.Tensor],
                   generator: torch.Generator) -> dict[str, float]:
        for _ in range(self.d_steps):
            real = next_batch()
            fake = self._fake(len(real), generator)
            # Discriminator: -log D(x) - log(1 - D(G(z))), written with logits.
            d_loss = (F.softplus(-self.disc(real)).mean()
                      + F.softplus(self.disc(fake.detach())).mean())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        # Generator, non-saturating: -log D(G(z)).
        g_loss = F.softplus(-self.disc(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"discriminator": d_loss.item(), "generator": g_loss.item()}

    @torch.no_grad()
    def sample_normalised(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self._fake(n, generator)


class WGANGP(GAN):
    """Wasserstein GAN with gradient penalty (same networks as :class:`GAN`)."""

    kind = "wgan_gp"
    label = "WGAN-GP"

    def __init__(self, generator: torch.Generator, device: torch.device | str = "cpu", *,
                 hidden: int = 128, depth: int = 3, z_dim: int = 8, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.5, 0.9), n_critic: int = 5,
                 gp_weight: float = 0.1):
        super().__init__(generator, device, hidden=hidden, depth=depth, z_dim=z_dim, lr=lr,
                         disc_lr=lr, betas=betas)
        self.n_critic = n_critic
        self.gp_weight = gp_weight

    def param_counts(self) -> dict[str, int]:
        g, d = count_params(self.gen), count_params(self.disc)
        return {"generator": g, "critic": d, "total": g + d}

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
        u = torch.rand((len(real), 1), generator=generator, device=generator.device)
        mix = (u.to(real.device) * real + (1 - u.to(real.device)) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.disc(mix).sum(), mix, create_graph=True)
        return ((grad.norm(dim=1) - 1.0) ** 2).mean()

    def train_step(self, next_batch: Callable[[], torch.Tensor],
                   generator: torch.Generator) -> dict[str, float]:
        for _ in range(self.n_critic):
            real = next_batch()
            with torch.no_grad():
                fake = self._fake(len(real), generator)
            w_est = self.disc(real).mean() - self.disc(fake).mean()
            c_loss = -w_est + self.gp_weight * self._gradient_penalty(real, fake, generator)
            self.opt_d.zero_grad(set_to_none=True)
            c_loss.backward()
            self.opt_d.step()
        g_loss = -self.disc(self._fake(len(real), generator)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"critic": c_loss.item(), "generator": g_loss.item(),
                "wasserstein_estimate": w_est.item()}
