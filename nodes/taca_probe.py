"""TACA Attention Probe and TACA Probe Plot nodes."""
import json

import numpy as np
import torch
from comfy_api.latest import io, ui

from ..taca_comfy.probe import attach_probe
from ..taca_core.probe_plot import render_probe_plot

PROBE = "TACAAttentionProbe"
PLOT = "TACAProbePlot"
ProbeType = io.Custom("TACA_PROBE")


def image_tensor(pil_image) -> torch.Tensor:
    """ComfyUI IMAGE: [batch, height, width, channels] floats in 0..1."""
    return torch.from_numpy(np.asarray(pil_image, dtype=np.float32) / 255.0)[None]


class TACAAttentionProbe(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=PROBE,
            display_name="TACA Attention Probe",
            category="model_patches/TACA",
            description=(
                "Measures what TACA does in your own graph: for every model call and every joint attention "
                "block, the share of each image token's attention that lands on the text tokens, with TACA's "
                "gamma and without it, on the same queries and keys. Put it on the model path of a model with "
                "TACA Model Patch (either order) and connect its probe output and the sampler's LATENT to TACA "
                "Probe Plot. It does not change the sampled image; it costs two extra fused attention passes "
                "per joint block while it is in the graph."),
            inputs=[io.Model.Input("model", tooltip="A model with TACA Model Patch on its chain.")],
            outputs=[
                io.Model.Output(tooltip="The same model, recording the attention share while it samples."),
                ProbeType.Output(display_name="probe",
                                 tooltip="The recordings of the last sampling run: connect to TACA Probe Plot."),
            ],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(*attach_probe(PROBE, model))


class TACAProbePlot(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=PLOT,
            display_name="TACA Probe Plot",
            category="model_patches/TACA",
            description=(
                "Plots what TACA Attention Probe recorded in the last sampling run: the image->text attention "
                "share per step and per joint block, plain against TACA. Also returns the numbers as JSON."),
            inputs=[
                ProbeType.Input("probe", tooltip="From TACA Attention Probe."),
                io.Latent.Input("samples", tooltip="The sampler's output: makes this node run after sampling."),
                io.String.Input("title", default="", optional=True,
                                tooltip="Title on the plot, e.g. the model name. Empty: 'TACA attention probe'."),
            ],
            outputs=[
                io.Image.Output(display_name="plot", tooltip="The plot, as an image."),
                io.String.Output(display_name="json", tooltip=(
                    'The numbers: {"calls": [{"sigma", "timestep", "gamma", "blocks": [{"index", '
                    '"share_plain", "share_taca"}]}]}, one entry per model call.')),
            ],
        )

    @classmethod
    def execute(cls, probe, samples, title="") -> io.NodeOutput:
        data = probe.to_dict()
        image = image_tensor(render_probe_plot(data, title))
        return io.NodeOutput(image, json.dumps(data), ui=ui.PreviewImage(image, cls=cls))
