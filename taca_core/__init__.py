"""TACA (Temperature-Adjusted Cross-modal Attention), pure torch: the math, with no knowledge of ComfyUI.

attention: the fused TACA attention (and its dense reference); layout: where the text sits in a joint
token sequence; schedule: when gamma acts; probe: the image->text attention share; lora_branch: a LoRA
as a gated branch beside a Linear layer.
"""
from .attention import dense_taca_attention, taca_attention, taca_split_attention
from .layout import TargetRowsLayout, TokenLayout
from .schedule import PAPER_GAMMA, PAPER_TIMESTEP_CUTOFF, TacaSchedule, paper_timestep
