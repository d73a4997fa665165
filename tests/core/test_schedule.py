import pytest
import torch

from comfyui_taca_under_test.taca_core.schedule import TacaSchedule, paper_timestep


class FluxLikeSampling:  # ComfyUI ModelSamplingFlux: timestep() returns sigma, in 0..1
    sigma_max = torch.tensor(1.0)

    def timestep(self, sigma):
        return sigma


class SD3LikeSampling:  # ModelSamplingDiscreteFlow, multiplier 1000: timestep() in 0..1000
    sigma_max = torch.tensor(1.0)

    def timestep(self, sigma):
        return sigma * 1000


@pytest.mark.parametrize("sampling", [FluxLikeSampling(), SD3LikeSampling()])
def test_units_agree_across_families(sampling):
    sigma = torch.tensor([1.0, 0.97, 0.5, 0.0])
    torch.testing.assert_close(paper_timestep(sampling, sigma), torch.tensor([1000.0, 970.0, 500.0, 0.0],
                                                                             dtype=torch.float64))


def test_cutoff_is_inclusive_and_gamma_one_outside():
    s = TacaSchedule(gamma=1.2, timestep_cutoff=970)
    assert s.gamma_at(paper_timestep(FluxLikeSampling(), torch.tensor([0.97]))) == 1.2
    assert s.gamma_at(paper_timestep(SD3LikeSampling(), torch.tensor([0.9699]))) == 1.0
    assert s.gamma_at(torch.tensor([970.0, 970.0], dtype=torch.float64)) == 1.2  # exactly at the cutoff
    assert s.gamma_at(torch.tensor([969.999], dtype=torch.float64)) == 1.0
    assert s.gamma_at(torch.tensor([990.0, 960.0])) == 1.0  # mixed batch: left alone


@pytest.mark.parametrize("gamma,cutoff", [(0.9, 970), (3.5, 970), (1.2, -1), (1.2, 1001)])
def test_out_of_range_values_are_rejected(gamma, cutoff):
    with pytest.raises(ValueError, match="must be in"):
        TacaSchedule(gamma, cutoff)
