"""TACA Training Window: core's Train LoRA trains with TACA on, on the paper's early timesteps only.

The paper trains its LoRA with TACA active on t >= t_thresh (Eq. 13). Train LoRA
(comfy_extras/nodes_train.py) draws each sample's sigma as
model_sampling.percent_to_sigma(u), u uniform in [0, 1). The window gives the
model its own copy of model_sampling (an object patch, as ComfyUI's
ModelSampling* nodes do) whose percent_to_sigma, while core's TrainSampler
runs, draws u * p_cut instead: core's own sigma distribution restricted to the
window (p_cut: the last percent whose sigma TACA treats as in the window).
Everything else (sampling, conds' timestep ranges, schedulers) sees the
original function, so sampling with the window's model is sampling with TACA
Model Patch's.

The run is found through public wrappers: SAMPLER_SAMPLE (is the sampler
core's TrainSampler?), PREDICT_NOISE (one training batch: does it mix captions?)
and APPLY_MODEL (one training forward: is its sigma in the window?).
"""
import contextvars
import copy
import logging
from dataclasses import dataclass

import torch
from comfy.patcher_extension import WrappersMP

from ..taca_core.schedule import TacaSchedule
from .model_patch import apply_taca
from .wrappers import SCHEDULE_KEY

WRAPPER_KEY = "taca_training_window"
log = logging.getLogger("ComfyUI-TACA")

# The TrainingRun of the Train LoRA run this thread is in (None: not training through a window).
CURRENT_RUN = contextvars.ContextVar("taca_training_run", default=None)


def _core_train_sampler():
    try:
        from comfy_extras.nodes_train import TrainSampler
    except ImportError:  # a ComfyUI without core's trainer
        return None
    return TrainSampler


def in_window(schedule: TacaSchedule, model_sampling, sigma) -> bool:
    """Whether every sigma of the batch is in TACA's window (float32, as Train LoRA hands it over)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    return schedule.in_window(model_sampling, sigma)


def window_percent(schedule: TacaSchedule, model_sampling, percent_to_sigma) -> float:
    """The largest percent (0..1, 0 = pure noise) whose sigma is in the window, by bisection."""
    if in_window(schedule, model_sampling, percent_to_sigma(1.0)):
        return 1.0
    lo, hi = 0.0, 1.0  # lo in the window (percent 0 is sigma_max), hi not
    for _ in range(64):
        mid = (lo + hi) / 2
        if in_window(schedule, model_sampling, percent_to_sigma(mid)):
            lo = mid
        else:
            hi = mid
    return lo


class WindowedPercentToSigma:
    """model_sampling.percent_to_sigma; during a Train LoRA run through the window, restricted to it."""

    def __init__(self, model_sampling):
        self.model_sampling = model_sampling  # the copy this function is the attribute of

    def original(self, percent):
        return type(self.model_sampling).percent_to_sigma(self.model_sampling, percent)

    def __call__(self, percent):
        run = CURRENT_RUN.get()
        if run is None or run.model_sampling is not self.model_sampling:
            return self.original(percent)
        return self.original(percent * run.percent_cut)


@dataclass
class TrainingRun:
    schedule: TacaSchedule
    model_sampling: object
    percent_cut: float
    forwards: int = 0       # training forwards (model calls)
    outside: int = 0        # of those, calls with a sigma outside the window
    mixed_batches: int = 0  # training batches whose samples have different captions
    batches: int = 0


class TrainingWindowWrappers:
    """The window's SAMPLER_SAMPLE, PREDICT_NOISE and APPLY_MODEL wrappers (one object: its settings)."""

    def __init__(self, node: str, schedule: TacaSchedule):
        self.node = node
        self.schedule = schedule  # the window's own settings (a later TACA Model Patch's win)

    def sampler_sample(self, executor, model_wrap, sigmas, extra_args, *args, **kwargs):
        train_sampler = _core_train_sampler()
        if train_sampler is None or not isinstance(executor.class_obj, train_sampler):
            return executor(model_wrap, sigmas, extra_args, *args, **kwargs)  # sampling: untouched
        run = self._start(model_wrap.inner_model.model_sampling,
                          extra_args["model_options"]["transformer_options"].get(SCHEDULE_KEY))
        token = CURRENT_RUN.set(run)
        try:
            return executor(model_wrap, sigmas, extra_args, *args, **kwargs)
        finally:
            CURRENT_RUN.reset(token)
            self._finish(run)

    def _start(self, model_sampling, schedule) -> TrainingRun:
        if schedule is None:  # another node removed TACA's schedule: the window's own settings
            schedule = self.schedule
        elif schedule != self.schedule:
            log.info("%s: a TACA Model Patch after this node set gamma=%s, timestep_cutoff=%s; TACA and the "
                     "training window follow it (the last TACA settings on a model win).", self.node,
                     schedule.gamma, schedule.timestep_cutoff)
        windowed = getattr(model_sampling, "percent_to_sigma", None)
        if not isinstance(windowed, WindowedPercentToSigma):
            raise ValueError(
                f"{self.node}: a node between TACA Training Window and Train LoRA replaced the model's sampling "
                "settings (e.g. ModelSamplingFlux / ModelSamplingSD3 / ModelSamplingAuraFlow), so training "
                "would not stay in TACA's window. Put that node before TACA Training Window.")
        cut = window_percent(schedule, model_sampling, windowed.original)
        log.info("%s: training on sigma >= %.4f (timestep >= %s), %.1f%% of Train LoRA's own sigma draws, "
                 "with TACA gamma=%s on every training step.", self.node, windowed.original(cut),
                 schedule.timestep_cutoff, 100 * cut, schedule.gamma)
        return TrainingRun(schedule, model_sampling, cut)

    def _finish(self, run: TrainingRun):
        if run.outside:
            log.warning("%s: %d of %d training forward(s) had a sigma outside TACA's window (timestep < %s): "
                        "another node changed Train LoRA's sigmas, so TACA did not act on them.", self.node,
                        run.outside, run.forwards, run.schedule.timestep_cutoff)
        if run.mixed_batches:
            log.warning("%s: %d of %d training batch(es) mixed different captions. Core's Train LoRA then "
                        "averages every caption's prediction over the whole batch, so no image is trained on its "
                        "own caption: set batch_size 1 and grad_accumulation_steps 4 (the paper's batch of 4).",
                        self.node, run.mixed_batches, run.batches)

    def predict_noise(self, executor, *args, **kwargs):
        run = CURRENT_RUN.get()
        if run is not None:
            run.batches += 1
            if _mixes_captions(executor.class_obj.conds.get("positive") or []):
                run.mixed_batches += 1
                if run.mixed_batches == 1:
                    log.warning("%s: this training batch mixes %d different captions (core's Train LoRA "
                                "averages them over the batch): use batch_size 1 with gradient accumulation.",
                                self.node, len(executor.class_obj.conds["positive"]))
        return executor(*args, **kwargs)

    def apply_model(self, executor, x, t, *args, **kwargs):
        run = CURRENT_RUN.get()
        if run is not None:
            run.forwards += 1
            if not in_window(run.schedule, executor.class_obj.model_sampling, t):
                run.outside += 1
                if run.outside == 1:
                    log.warning("%s: a training forward at sigma %s is outside TACA's window (timestep < %s).",
                                self.node, t.flatten().tolist(), run.schedule.timestep_cutoff)
        return executor(x, t, *args, **kwargs)


def _caption(cond: dict):
    """The tensors of one processed cond that carry its caption (ComfyUI's CONDRegular.cond and kin)."""
    return [getattr(c, "cond", None) for _, c in sorted(cond.get("model_conds", {}).items())]


def _mixes_captions(conds: list) -> bool:
    if len(conds) < 2:
        return False
    first = _caption(conds[0])
    for cond in conds[1:]:
        for a, b in zip(first, _caption(cond), strict=False):
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
                if a.shape != b.shape or not torch.equal(a, b):
                    return True
    return False


def apply_training_window(node: str, model, gamma: float, timestep_cutoff: float):
    """A clone of model with TACA (as TACA Model Patch) whose Train LoRA runs stay in TACA's window."""
    patched = apply_taca(node, model, gamma, timestep_cutoff)  # replaces a TACA patch already on model
    schedule = patched.model_options["transformer_options"][SCHEDULE_KEY]
    wrappers = TrainingWindowWrappers(node, schedule)
    for wrapper_type in (WrappersMP.SAMPLER_SAMPLE, WrappersMP.PREDICT_NOISE, WrappersMP.APPLY_MODEL):
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    patched.add_wrapper_with_key(WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, wrappers.sampler_sample)
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, WRAPPER_KEY, wrappers.predict_noise)
    patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, wrappers.apply_model)
    # our own copy (the model's may be shared with other clones): identical but for the training draw
    model_sampling = copy.deepcopy(patched.get_model_object("model_sampling"))
    model_sampling.percent_to_sigma = WindowedPercentToSigma(model_sampling)
    patched.add_object_patch("model_sampling", model_sampling)
    return patched
