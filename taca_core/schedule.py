"""When gamma acts: paper Eq. 11, on the paper's 0..1000 timestep scale."""
from dataclasses import dataclass

import torch

PAPER_GAMMA = 1.2
PAPER_TIMESTEP_CUTOFF = 970
GAMMA_RANGE = (1.0, 3.0)


def paper_timestep(model_sampling, sigma: torch.Tensor) -> torch.Tensor:
    """The paper's timestep (0..1000, 1000 = pure noise) of each sigma.

    ComfyUI's model_sampling.timestep() has model-specific units (FLUX: 0..1,
    SD3: 0..1000); dividing by the timestep of sigma_max makes them agree. For
    flow models this is 1000 * sigma, which is how diffusers' flow schedulers
    (and so the paper's "t >= 970") count.
    """
    sigma = sigma.detach().double()
    t_max = model_sampling.timestep(model_sampling.sigma_max.detach().double().to(sigma.device))
    return 1000.0 * model_sampling.timestep(sigma) / t_max


@dataclass(frozen=True)
class TacaSchedule:
    gamma: float = PAPER_GAMMA
    timestep_cutoff: float = PAPER_TIMESTEP_CUTOFF

    def __post_init__(self):
        lo, hi = GAMMA_RANGE
        if not lo <= self.gamma <= hi:
            raise ValueError(f"gamma must be in [{lo}, {hi}] (paper: {PAPER_GAMMA}), got {self.gamma}")
        if not 0 <= self.timestep_cutoff <= 1000:
            raise ValueError(f"timestep_cutoff must be in [0, 1000] (paper: {PAPER_TIMESTEP_CUTOFF}), "
                             f"got {self.timestep_cutoff}")

    def window_holds(self, timesteps: torch.Tensor) -> bool:
        """Whether every sample of the batch is at or above the cutoff."""
        return bool((timesteps >= self.timestep_cutoff).all())

    def gamma_at(self, timesteps: torch.Tensor) -> float:
        """gamma when every sample of the batch is at or above the cutoff, else 1.

        A batch mixing both sides (unusual: ComfyUI batches one sigma) is left alone.
        """
        return self.gamma if self.window_holds(timesteps) else 1.0

    def in_window(self, model_sampling, sigma: torch.Tensor) -> bool:
        """Whether a model call at ComfyUI's sigma (every sample of it) is in the window."""
        return self.window_holds(paper_timestep(model_sampling, sigma))

    def gamma_at_sigma(self, model_sampling, sigma: torch.Tensor) -> float:
        """gamma for a model call at ComfyUI's sigma, in the model's own timestep units."""
        return self.gamma_at(paper_timestep(model_sampling, sigma))
