"""TACA (Temperature-Adjusted Cross-modal Attention), pure torch: no ComfyUI import."""
from .attention import dense_taca_attention, taca_attention, taca_split_attention
from .families import FAMILIES, Family, family_of, supported_families
from .layout import TokenLayout
from .schedule import PAPER_GAMMA, PAPER_TIMESTEP_CUTOFF, TacaSchedule, paper_timestep
