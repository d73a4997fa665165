"""Writes workflows/*.json (ComfyUI UI-format graphs) from the compact specs below.

    python tools/build_workflows.py

Core ComfyUI loaders and the file names ComfyUI's own FLUX / SD3.5 templates use; paper defaults in the
TACA widgets; a Note in each graph saying what to download and where it goes.
"""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "workflows"

# type -> (link inputs [(name, type)], outputs [(name, type)])
IO = {
    "UNETLoader": ([], [("MODEL", "MODEL")]),
    "DualCLIPLoader": ([], [("CLIP", "CLIP")]),
    "CheckpointLoaderSimple": ([], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
    "VAELoader": ([], [("VAE", "VAE")]),
    "CLIPTextEncode": ([("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")]),
    "FluxGuidance": ([("conditioning", "CONDITIONING")], [("CONDITIONING", "CONDITIONING")]),
    "EmptySD3LatentImage": ([], [("LATENT", "LATENT")]),
    "KSampler": ([("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                  ("latent_image", "LATENT")], [("LATENT", "LATENT")]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")]),
    "SaveImage": ([("images", "IMAGE")], []),
    "ImageStitch": ([("image1", "IMAGE"), ("image2", "IMAGE")], [("IMAGE", "IMAGE")]),
    "TACAModelPatch": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "TACALoraLoader": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "Note": ([], []),
}
PAPER = [1.2, 970]  # TACAModelPatch: gamma, timestep_cutoff
FLUX_LORA = "taca_flux1_dev_r64.safetensors"
SD35M_LORA = "taca_sd3.5_medium_r64.safetensors"


class Graph:
    def __init__(self):
        self.nodes, self.links = [], []

    def add(self, type_, widgets, pos, size=(320, 110), title=None):
        inputs, outputs = IO[type_]
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": type_}, "widgets_values": list(widgets)}
        if title:
            node["title"] = title
        if type_ == "Note":
            node["color"], node["bgcolor"] = "#432", "#653"
        self.nodes.append(node)
        return node

    def link(self, src, out_slot, dst, input_name):
        slot = next(i for i, x in enumerate(dst["inputs"]) if x["name"] == input_name)
        link_id = len(self.links) + 1
        self.links.append([link_id, src["id"], out_slot, dst["id"], slot, src["outputs"][out_slot]["type"]])
        src["outputs"][out_slot]["links"].append(link_id)
        dst["inputs"][slot]["link"] = link_id

    def json(self):
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


def sampler_tail(g, model, pos, neg, latent, vae, x, y, prefix, steps, cfg, seed=42):
    ks = g.add("KSampler", [seed, "fixed", steps, cfg, "euler", "simple", 1.0], (x, y), (320, 262))
    g.link(model, 0, ks, "model")
    g.link(pos, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(latent, 0, ks, "latent_image")
    dec = g.add("VAEDecode", [], (x + 340, y), (210, 46))
    g.link(ks, 0, dec, "samples")
    g.link(vae, vae_slot(vae), dec, "vae")
    if prefix:
        save = g.add("SaveImage", [prefix], (x + 570, y), (400, 420))
        g.link(dec, 0, save, "images")
    return dec


def vae_slot(node):
    return 2 if node["type"] == "CheckpointLoaderSimple" else 0


def flux_front(g, prompt):
    unet = g.add("UNETLoader", ["flux1-dev.safetensors", "default"], (0, 0), (320, 82))
    clip = g.add("DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux"], (0, 120), (320, 130))
    vae = g.add("VAELoader", ["ae.safetensors"], (0, 290), (320, 58))
    pos = g.add("CLIPTextEncode", [prompt], (360, 300), (400, 160), title="Prompt")
    g.link(clip, 0, pos, "clip")
    guided = g.add("FluxGuidance", [3.5], (360, 530), (320, 58))
    g.link(pos, 0, guided, "conditioning")
    neg = g.add("CLIPTextEncode", [""], (360, 630), (400, 100), title="Negative (unused at cfg 1)")
    g.link(clip, 0, neg, "clip")
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 790), (320, 106))
    return unet, vae, guided, neg, latent


FLUX_NOTE = ("FLUX.1-dev + TACA\n\nDownload into ComfyUI/models/:\n- diffusion_models/flux1-dev.safetensors "
             "(black-forest-labs/FLUX.1-dev)\n- text_encoders/clip_l.safetensors and t5xxl_fp16.safetensors "
             "(comfyanonymous/flux_text_encoders)\n- vae/ae.safetensors (black-forest-labs/FLUX.1-dev)\n")
LORA_NOTE = ("\nTACA LoRA: download a FLUX.1-dev or SD3.5-medium LoRA (rank 16 or 64, .safetensors) from "
             "huggingface.co/ldiex/TACA into models/loras/ and pick it in TACA LoRA Loader. It is active only "
             "on the steps where TACA acts; alone it does not improve alignment.\n")
TACA_NOTE = ("\nTACA Model Patch: gamma 1.2 and timestep_cutoff 970 are the paper's defaults; the preview on the "
             "node shows which steps get gamma.")


def taca_chain(g, loader, lora_name=None):
    """loader -> [TACA LoRA Loader] -> TACA Model Patch; returns the patch node."""
    model = loader
    if lora_name:
        model = g.add("TACALoraLoader", [lora_name, 1.0, "while TACA acts"], (360, 0), (340, 130))
        g.link(loader, 0, model, "model")
    taca = g.add("TACAModelPatch", PAPER, (720 if lora_name else 360, 0), (340, 230))
    g.link(model, 0, taca, "model")
    return taca


def flux(with_lora):
    g = Graph()
    unet, vae, pos, neg, latent = flux_front(
        g, "A red book and a yellow vase on a wooden table, a green apple to the left of the vase")
    taca = taca_chain(g, unet, FLUX_LORA if with_lora else None)
    sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, "TACA_flux", steps=20, cfg=1.0)
    g.add("Note", [FLUX_NOTE + (LORA_NOTE if with_lora else "") + TACA_NOTE], (-380, 0), (340, 420))
    return g


SD35_CHECKPOINTS = {  # Comfy-Org/stable-diffusion-3.5-fp8: text encoders included (as ComfyUI's SD3.5 template)
    "medium": "sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors",
    "large": "sd3.5_large_fp8_scaled.safetensors",
}


def sd35(variant, with_lora, prompt):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", [SD35_CHECKPOINTS[variant]], (0, 0), (320, 98))
    pos = g.add("CLIPTextEncode", [prompt], (360, 300), (400, 160), title="Prompt")
    g.link(ckpt, 1, pos, "clip")
    neg = g.add("CLIPTextEncode", [""], (360, 510), (400, 100), title="Negative")
    g.link(ckpt, 1, neg, "clip")
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 660), (320, 106))
    taca = taca_chain(g, ckpt, SD35M_LORA if with_lora else None)
    sampler_tail(g, taca, pos, neg, latent, ckpt, 800, 300, f"TACA_sd3.5_{variant}", steps=30, cfg=4.5)
    note = (f"SD3.5 {variant} + TACA\n\nDownload into ComfyUI/models/checkpoints/:\n- {SD35_CHECKPOINTS[variant]} "
            "(Comfy-Org/stable-diffusion-3.5-fp8; text encoders included)\n")
    if variant == "large":
        note += "\nThe official TACA LoRAs are for SD3.5 medium and FLUX.1-dev; TACA alone works on large.\n"
    g.add("Note", [note + (LORA_NOTE if with_lora else "") + TACA_NOTE], (-380, 0), (340, 420))
    return g


def flux_ab():
    g = Graph()
    unet, vae, pos, neg, latent = flux_front(g, "A green bicycle leaning on a blue door next to two orange cats")
    taca = taca_chain(g, unet)
    without = sampler_tail(g, unet, pos, neg, latent, vae, 800, 0, None, steps=20, cfg=1.0)
    with_taca = sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, None, steps=20, cfg=1.0)
    stitch = g.add("ImageStitch", ["right", True, 16, "white"], (1400, 0), (270, 150),
                   title="Left: without TACA, right: with TACA")
    g.link(without, 0, stitch, "image1")
    g.link(with_taca, 0, stitch, "image2")
    save = g.add("SaveImage", ["TACA_AB"], (1400, 200), (600, 400))
    g.link(stitch, 0, save, "images")
    g.add("Note", [FLUX_NOTE + "\nSame seed and prompt, rendered without (top sampler) and with TACA (bottom); "
                   "the saved image puts them side by side." + TACA_NOTE], (-380, 0), (340, 420))
    return g


WORKFLOWS = {
    "taca_flux1_dev": lambda: flux(False),
    "taca_flux1_dev_lora": lambda: flux(True),
    "taca_sd3.5_medium_lora": lambda: sd35("medium", True, "A blue bench and a pink dog, the dog sitting to the "
                                                           "right of the bench, in a snowy park"),
    "taca_sd3.5_medium": lambda: sd35("medium", False, "A blue bench and a pink dog, the dog sitting to the right "
                                                        "of the bench, in a snowy park"),
    "taca_sd3.5_large": lambda: sd35("large", False, "Three brown horses and a white cat on a green hill, "
                                                     "the cat on top of a red barrel"),
    "taca_flux1_dev_ab": flux_ab,
}

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, build in WORKFLOWS.items():
        (OUT / f"{name}.json").write_text(json.dumps(build().json(), indent=1) + "\n")
        print("wrote", OUT / f"{name}.json")
