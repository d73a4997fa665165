"""Writes workflows/*.json (ComfyUI UI-format graphs) from the compact specs below.

    python tools/build_workflows.py

Each graph follows ComfyUI's own template for its model (package comfyui-workflow-templates-json 0.1.123,
the template named in extra.taca.template), flattened (no subgraph, no optional LoRA switch) with the TACA
nodes in the model chain: its core nodes, its model file names, and on every loader its `properties.models`
({name, url, directory}, as the templates carry them), so the frontend offers the downloads. Paper defaults in
the TACA widgets; a Note in each graph. extra.taca.requires names the oldest tested ComfyUI that has the
model, where that is newer than the oldest tested release (and, with model_file, the file of a backport that
brings it to an older tree).
"""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "workflows"

# type -> (link inputs [(name, type)], outputs [(name, type)])
IO = {
    "UNETLoader": ([], [("MODEL", "MODEL")]),
    "DualCLIPLoader": ([], [("CLIP", "CLIP")]),
    "CLIPLoader": ([], [("CLIP", "CLIP")]),
    "CheckpointLoaderSimple": ([], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
    "VAELoader": ([], [("VAE", "VAE")]),
    "CLIPTextEncode": ([("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")]),
    "FluxGuidance": ([("conditioning", "CONDITIONING")], [("CONDITIONING", "CONDITIONING")]),
    "ConditioningZeroOut": ([("conditioning", "CONDITIONING")], [("CONDITIONING", "CONDITIONING")]),
    "ModelSamplingAuraFlow": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "EmptySD3LatentImage": ([], [("LATENT", "LATENT")]),
    "EmptyLatentImage": ([], [("LATENT", "LATENT")]),
    "EmptyFlux2LatentImage": ([], [("LATENT", "LATENT")]),
    "Flux2Scheduler": ([], [("SIGMAS", "SIGMAS")]),
    "BasicGuider": ([("model", "MODEL"), ("conditioning", "CONDITIONING")], [("GUIDER", "GUIDER")]),
    "RandomNoise": ([], [("NOISE", "NOISE")]),
    "KSamplerSelect": ([], [("SAMPLER", "SAMPLER")]),
    "SamplerCustomAdvanced": ([("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                               ("latent_image", "LATENT")], [("output", "LATENT"), ("denoised_output", "LATENT")]),
    "KSampler": ([("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                  ("latent_image", "LATENT")], [("LATENT", "LATENT")]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")]),
    "SaveImage": ([("images", "IMAGE")], []),
    "ImageStitch": ([("image1", "IMAGE"), ("image2", "IMAGE")], [("IMAGE", "IMAGE")]),
    "TACAModelPatch": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "TACALoraLoader": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "TACAAttentionProbe": ([("model", "MODEL")], [("MODEL", "MODEL"), ("probe", "TACA_PROBE")]),
    "TACAProbePlot": ([("probe", "TACA_PROBE"), ("samples", "LATENT")], [("plot", "IMAGE"), ("json", "STRING")]),
    "TACATrainingWindow": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "LoadImageTextDataSetFromFolder": ([], [("images", "IMAGE"), ("texts", "STRING")]),
    "VAEEncode": ([("pixels", "IMAGE"), ("vae", "VAE")], [("LATENT", "LATENT")]),
    "TrainLoraNode": ([("model", "MODEL"), ("latents", "LATENT"), ("positive", "CONDITIONING")],
                      [("lora", "LORA_MODEL"), ("loss_map", "LOSS_MAP"), ("steps", "INT")]),
    "SaveLoRA": ([("lora", "LORA_MODEL")], []),
    "LossGraphNode": ([("loss", "LOSS_MAP")], []),
    "TextEncodeQwenImage21": ([("clip", "CLIP"), ("vae", "VAE")],
                              [("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent", "LATENT")]),
    "QwenImage21Cache": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "Note": ([], []),
}
PAPER = [1.2, 970]  # TACAModelPatch: gamma, timestep_cutoff
TEMPLATES = "comfyui-workflow-templates-json 0.1.123"


def hf(repo, path):
    return f"https://huggingface.co/{repo}/resolve/main/{path}"


def model(directory, repo, path):
    """A properties.models entry, as ComfyUI's templates write them (the file name is the url's last part)."""
    return {"name": path.rsplit("/", 1)[-1], "url": hf(repo, path), "directory": directory}


# The files and urls of ComfyUI's templates (the template named on each), except where noted.
FLUX1_DEV = model("diffusion_models", "Comfy-Org/flux1-dev", "flux1-dev.safetensors")  # flux_dev_full_text_to_image
CLIP_L = model("text_encoders", "comfyanonymous/flux_text_encoders", "clip_l.safetensors")
T5XXL = model("text_encoders", "comfyanonymous/flux_text_encoders", "t5xxl_fp16.safetensors")
FLUX1_AE = model("vae", "Comfy-Org/Lumina_Image_2.0_Repackaged", "split_files/vae/ae.safetensors")
SD35 = {  # Comfy-Org/stable-diffusion-3.5-fp8, text encoders included. large: sd3.5_simple_example; medium: the
    # same repository's medium file, which ComfyUI's SD3.5 example page links (no template names it)
    "medium": model("checkpoints", "Comfy-Org/stable-diffusion-3.5-fp8",
                    "sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors"),
    "large": model("checkpoints", "Comfy-Org/stable-diffusion-3.5-fp8", "sd3.5_large_fp8_scaled.safetensors"),
}
# The official TACA LoRAs (ldiex/TACA). UNVERIFIED: the file names in that repository could not be checked
# from here; the local names below are this pack's and the urls assume the repository uses the same names.
TACA_LORA = {
    "flux": model("loras", "ldiex/TACA", "taca_flux1_dev_r64.safetensors"),
    "sd3.5_medium": model("loras", "ldiex/TACA", "taca_sd3.5_medium_r64.safetensors"),
}
QWEN_IMAGE = {  # image_qwen_image
    "unet": model("diffusion_models", "Comfy-Org/Qwen-Image_ComfyUI",
                  "split_files/diffusion_models/qwen_image_fp8_e4m3fn.safetensors"),
    "clip": model("text_encoders", "Comfy-Org/Qwen-Image_ComfyUI",
                  "split_files/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
    "vae": model("vae", "Comfy-Org/Qwen-Image_ComfyUI", "split_files/vae/qwen_image_vae.safetensors"),
}
Z_IMAGE_TURBO = {  # image_z_image_turbo
    "unet": model("diffusion_models", "Comfy-Org/z_image_turbo",
                  "split_files/diffusion_models/z_image_turbo_bf16.safetensors"),
    "clip": model("text_encoders", "Comfy-Org/z_image_turbo", "split_files/text_encoders/qwen_3_4b.safetensors"),
    "vae": model("vae", "Comfy-Org/z_image_turbo", "split_files/vae/ae.safetensors"),
}
KREA2_TURBO = {  # image_krea2_turbo_t2i
    "unet": model("diffusion_models", "Comfy-Org/Krea-2", "diffusion_models/krea2_turbo_fp8_scaled.safetensors"),
    "clip": model("text_encoders", "Comfy-Org/Krea-2", "text_encoders/qwen3vl_4b_fp8_scaled.safetensors"),
    "vae": model("vae", "Comfy-Org/Krea-2", "vae/qwen_image_vae.safetensors"),
}
FLUX2_DEV = {  # image_flux2_text_to_image; its VAE, FLUX.2-small-decoder, loads only in ComfyUI newer than 0.8.0,
    # so the full FLUX.2 VAE of ComfyUI's other FLUX.2 dev template (image_flux2_fp8)
    "unet": model("diffusion_models", "Comfy-Org/flux2-dev",
                  "split_files/diffusion_models/flux2_dev_fp8mixed.safetensors"),
    "clip": model("text_encoders", "Comfy-Org/flux2-dev",
                  "split_files/text_encoders/mistral_3_small_flux2_bf16.safetensors"),
    "vae": model("vae", "Comfy-Org/flux2-dev", "split_files/vae/flux2-vae.safetensors"),
}
QWEN_IMAGE_21 = {  # image_qwen_image_2_1_t2i
    "unet": model("diffusion_models", "Comfy-Org/Qwen-Image-2.1", "diffusion_models/qwen_image_2.1_int8_convrot.safetensors"),
    "clip": model("text_encoders", "Comfy-Org/Qwen-Image-2.1", "text_encoders/qwen3vl_8b_int8_convrot.safetensors"),
    "vae": model("vae", "Comfy-Org/Qwen-Image-2.1", "vae/qwen_image_2.1_vae_bf16.safetensors"),
}


class Graph:
    def __init__(self, template=None, requires=None):
        self.nodes, self.links = [], []
        self.taca = {}
        if template:
            self.taca["template"] = f"{template} ({TEMPLATES})"
        if requires:
            self.taca["requires"] = requires

    def add(self, type_, widgets, pos, size=(320, 110), title=None, models=()):
        inputs, outputs = IO[type_]
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": type_}, "widgets_values": list(widgets)}
        if models:
            node["properties"]["models"] = [dict(m) for m in models]
        if title:
            node["title"] = title
        if type_ == "Note":
            node["color"], node["bgcolor"] = "#432", "#653"
        self.nodes.append(node)
        return node

    def loader(self, type_, files, extra_widgets, pos, size):
        """A loader whose file widgets come first; each file carries its download entry."""
        return self.add(type_, [f["name"] for f in files] + list(extra_widgets), pos, size, models=files)

    def widget_input(self, node, name, type_):
        """A widget of node turned into an input (to link a value into it)."""
        node["inputs"].append({"name": name, "type": type_, "widget": {"name": name}, "link": None})

    def link(self, src, out_slot, dst, input_name):
        slot = next(i for i, x in enumerate(dst["inputs"]) if x["name"] == input_name)
        link_id = len(self.links) + 1
        self.links.append([link_id, src["id"], out_slot, dst["id"], slot, src["outputs"][out_slot]["type"]])
        src["outputs"][out_slot]["links"].append(link_id)
        dst["inputs"][slot]["link"] = link_id

    def json(self):
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {}, "extra": {"taca": self.taca} if self.taca else {},
                "version": 0.4}


def sampler_tail(g, model_, pos, neg, latent, vae, x, y, prefix, steps, cfg, seed=42, sampler="euler"):
    ks = g.add("KSampler", [seed, "fixed", steps, cfg, sampler, "simple", 1.0], (x, y), (320, 262))
    g.link(model_, 0, ks, "model")
    g.link(pos, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(latent, 0, ks, "latent_image")
    return decode_and_save(g, ks, vae, x + 340, y, prefix)


def decode_and_save(g, samples, vae, x, y, prefix):
    dec = g.add("VAEDecode", [], (x, y), (210, 46))
    g.link(samples, 0, dec, "samples")
    g.link(vae, vae_slot(vae), dec, "vae")
    if prefix:
        save = g.add("SaveImage", [prefix], (x + 230, y), (400, 420))
        g.link(dec, 0, save, "images")
    return dec


def vae_slot(node):
    return 2 if node["type"] == "CheckpointLoaderSimple" else 0


def flux_front(g, prompt):
    unet = g.loader("UNETLoader", [FLUX1_DEV], ["default"], (0, 0), (320, 82))
    clip = g.loader("DualCLIPLoader", [CLIP_L, T5XXL], ["flux"], (0, 120), (320, 130))
    vae = g.loader("VAELoader", [FLUX1_AE], [], (0, 290), (320, 58))
    pos = g.add("CLIPTextEncode", [prompt], (360, 300), (400, 160), title="Prompt")
    g.link(clip, 0, pos, "clip")
    guided = g.add("FluxGuidance", [3.5], (360, 530), (320, 58))
    g.link(pos, 0, guided, "conditioning")
    neg = g.add("CLIPTextEncode", [""], (360, 630), (400, 100), title="Negative (unused at cfg 1)")
    g.link(clip, 0, neg, "clip")
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 790), (320, 106))
    return unet, vae, guided, neg, latent


DOWNLOADS = ("\nThe model files: ComfyUI offers to download any that are missing when the workflow opens "
             "(or see each loader's properties). They go to ComfyUI/models/:\n")
FLUX_NOTE = ("FLUX.1-dev + TACA\n" + DOWNLOADS + "- diffusion_models/flux1-dev.safetensors\n"
             "- text_encoders/clip_l.safetensors and t5xxl_fp16.safetensors\n- vae/ae.safetensors\n")
LORA_NOTE = ("\nTACA LoRA (official, huggingface.co/ldiex/TACA; FLUX.1-dev and SD3.5 medium, rank 16 or 64) goes "
             "to models/loras/. It is active only on the steps where TACA acts; alone it does not improve "
             "alignment.\n")
TACA_NOTE = ("\nTACA Model Patch: gamma 1.2 and timestep_cutoff 970 are the paper's defaults; the preview on the "
             "node shows which steps get gamma.")
NEW_FAMILY_NOTE = ("\nTACA Model Patch: gamma 1.2 and timestep_cutoff 970 are the paper's defaults, validated only on "
                   "FLUX.1-dev and SD3.5 medium; on this model they are a starting point. There is no official TACA "
                   "LoRA for this model.")


def taca_chain(g, loader, lora=None, pos=(360, 0)):
    """loader -> [TACA LoRA Loader] -> TACA Model Patch; returns the patch node."""
    model_ = loader
    if lora:
        model_ = g.add("TACALoraLoader", [lora["name"], 1.0, "while TACA acts"], pos, (340, 130), models=[lora])
        g.link(loader, 0, model_, "model")
        pos = (pos[0] + 360, pos[1])
    taca = g.add("TACAModelPatch", PAPER, pos, (340, 230))
    g.link(model_, 0, taca, "model")
    return taca


def flux(with_lora):
    g = Graph("flux_dev_full_text_to_image")
    unet, vae, pos, neg, latent = flux_front(
        g, "A red book and a yellow vase on a wooden table, a green apple to the left of the vase")
    taca = taca_chain(g, unet, TACA_LORA["flux"] if with_lora else None)
    sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, "TACA_flux", steps=20, cfg=1.0)
    g.add("Note", [FLUX_NOTE + (LORA_NOTE if with_lora else "") + TACA_NOTE], (-380, 0), (340, 420))
    return g


def sd35(variant, with_lora, prompt):
    g = Graph("sd3.5_simple_example" + ("" if variant == "large" else ", with the medium checkpoint"))
    ckpt = g.loader("CheckpointLoaderSimple", [SD35[variant]], [], (0, 0), (320, 98))
    pos = g.add("CLIPTextEncode", [prompt], (360, 300), (400, 160), title="Prompt")
    g.link(ckpt, 1, pos, "clip")
    neg = g.add("CLIPTextEncode", [""], (360, 510), (400, 100), title="Negative")
    g.link(ckpt, 1, neg, "clip")
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 660), (320, 106))
    taca = taca_chain(g, ckpt, TACA_LORA["sd3.5_medium"] if with_lora else None)
    sampler_tail(g, taca, pos, neg, latent, ckpt, 800, 300, f"TACA_sd3.5_{variant}", steps=30, cfg=4.5)
    note = (f"SD3.5 {variant} + TACA\n" + DOWNLOADS + f"- checkpoints/{SD35[variant]['name']} (text encoders "
            "included)\n")
    if variant == "large":
        note += "\nThe official TACA LoRAs are for SD3.5 medium and FLUX.1-dev; TACA alone works on large.\n"
    g.add("Note", [note + (LORA_NOTE if with_lora else "") + TACA_NOTE], (-380, 0), (340, 420))
    return g


def flux_ab():
    g = Graph("flux_dev_full_text_to_image")
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


def flux_probe():
    """FLUX.1-dev + TACA + the attention probe: the plot shows what TACA did to this prompt's attention."""
    g = Graph("flux_dev_full_text_to_image")
    unet, vae, pos, neg, latent = flux_front(
        g, "A red book and a yellow vase on a wooden table, a green apple to the left of the vase")
    taca = taca_chain(g, unet)
    probe = g.add("TACAAttentionProbe", [], (720, 0), (300, 66))
    g.link(taca, 0, probe, "model")
    ks = g.add("KSampler", [42, "fixed", 20, 1.0, "euler", "simple", 1.0], (800, 300), (320, 262))
    for src, name in ((probe, "model"), (pos, "positive"), (neg, "negative"), (latent, "latent_image")):
        g.link(src, 0, ks, name)
    decode_and_save(g, ks, vae, 1140, 300, "TACA_flux_probe")
    plot = g.add("TACAProbePlot", [""], (800, 760), (640, 420))
    g.link(probe, 1, plot, "probe")
    g.link(ks, 0, plot, "samples")
    g.add("Note", [FLUX_NOTE + TACA_NOTE + "\n\nTACA Attention Probe records, for every step and joint block, the "
                   "share of the image tokens' attention that lands on the text, with and without TACA's gamma; "
                   "TACA Probe Plot draws it after the sampling (and outputs the numbers as JSON). It does not "
                   "change the image. To probe another workflow: put TACA Attention Probe after its TACA Model "
                   "Patch and connect a TACA Probe Plot to the probe and the sampler's LATENT."],
          (-380, 0), (340, 520))
    return g


def files_note(title, files, requires=None):
    lines = [f"{title} + TACA\n", DOWNLOADS.lstrip("\n")]
    lines += [f"- {f['directory']}/{f['name']}\n" for f in files]
    if requires:
        lines.append(f"\nFor ComfyUI {requires['comfyui']} and newer ({requires['why']}).\n")
    return "".join(lines) + NEW_FAMILY_NOTE


def single_te_front(g, files, clip_type, prompt, negative):
    """UNETLoader, CLIPLoader, VAELoader and the prompts of the single-text-encoder templates."""
    unet = g.loader("UNETLoader", [files["unet"]], ["default"], (0, 0), (320, 82))
    clip = g.loader("CLIPLoader", [files["clip"]], [clip_type, "default"], (0, 120), (320, 106))
    vae = g.loader("VAELoader", [files["vae"]], [], (0, 270), (320, 58))
    pos = g.add("CLIPTextEncode", [prompt], (360, 300), (400, 160), title="Prompt")
    g.link(clip, 0, pos, "clip")
    if negative is None:  # distilled templates: cfg 1, the negative is the zeroed prompt
        neg = g.add("ConditioningZeroOut", [], (360, 510), (320, 46))
        g.link(pos, 0, neg, "conditioning")
    else:
        neg = g.add("CLIPTextEncode", [negative], (360, 510), (400, 100), title="Negative")
        g.link(clip, 0, neg, "clip")
    return unet, vae, pos, neg


def qwen_image():
    """image_qwen_image without its optional Lightning LoRA: 20 steps, cfg 4, shift 3.1, 1328x1328."""
    g = Graph("image_qwen_image")
    unet, vae, pos, neg = single_te_front(
        g, QWEN_IMAGE, "qwen_image", "A red cube on top of a blue sphere, a yellow cone to the left of them, "
        "and a sign reading \"TACA\" on the wall behind", "")
    latent = g.add("EmptySD3LatentImage", [1328, 1328, 1], (360, 660), (320, 106))
    shift = g.add("ModelSamplingAuraFlow", [3.1], (360, 0), (320, 58))
    g.link(unet, 0, shift, "model")
    taca = taca_chain(g, shift, pos=(720, 0))
    sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, "TACA_qwen_image", steps=20, cfg=4.0)
    g.add("Note", [files_note("Qwen-Image", QWEN_IMAGE.values())], (-380, 0), (340, 420))
    return g


def z_image_turbo():
    """image_z_image_turbo: 8 steps, cfg 1, res_multistep, shift 3, 1024x1024."""
    requires = {"comfyui": "0.8.0", "why": "ComfyUI 0.3.64 has no Z-Image"}
    g = Graph("image_z_image_turbo", requires)
    unet, vae, pos, neg = single_te_front(
        g, Z_IMAGE_TURBO, "lumina2", "Two white swans and a black duck on a green pond, the duck between the "
        "swans, a red bridge behind them", None)
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 600), (320, 106))
    shift = g.add("ModelSamplingAuraFlow", [3.0], (360, 0), (320, 58))
    g.link(unet, 0, shift, "model")
    taca = taca_chain(g, shift, pos=(720, 0))
    sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, "TACA_z_image_turbo", steps=8, cfg=1.0,
                 sampler="res_multistep")
    g.add("Note", [files_note("Z-Image Turbo", Z_IMAGE_TURBO.values(), requires)], (-380, 0), (340, 420))
    return g


def krea2_turbo():
    """image_krea2_turbo_t2i without its prompt-expansion and LoRA options: 8 steps, cfg 1, 1024x1024."""
    requires = {"comfyui": "0.33.0", "why": "ComfyUI 0.8.0 has no Krea 2"}
    g = Graph("image_krea2_turbo_t2i", requires)
    unet, vae, pos, neg = single_te_front(
        g, KREA2_TURBO, "krea2", "A glass teapot full of purple flowers next to three stacked green books, "
        "a small brass key on the top book", None)
    latent = g.add("EmptyLatentImage", [1024, 1024, 1], (360, 600), (320, 106))
    taca = taca_chain(g, unet)
    sampler_tail(g, taca, pos, neg, latent, vae, 800, 300, "TACA_krea2_turbo", steps=8, cfg=1.0)
    g.add("Note", [files_note("Krea 2 Turbo", KREA2_TURBO.values(), requires)], (-380, 0), (340, 420))
    return g


def flux2_dev():
    """image_flux2_text_to_image without its optional Turbo LoRA: guidance 4, 20 steps, 1024x1024."""
    requires = {"comfyui": "0.8.0", "why": "ComfyUI 0.3.64 has no FLUX.2"}
    g = Graph("image_flux2_text_to_image", requires)
    unet = g.loader("UNETLoader", [FLUX2_DEV["unet"]], ["default"], (0, 0), (320, 82))
    clip = g.loader("CLIPLoader", [FLUX2_DEV["clip"]], ["flux2", "default"], (0, 120), (320, 106))
    vae = g.loader("VAELoader", [FLUX2_DEV["vae"]], [], (0, 270), (320, 58))
    pos = g.add("CLIPTextEncode", ["A blue teacup on a yellow saucer, a silver spoon to the right of the cup, "
                                   "on a checkered red and white tablecloth"], (360, 300), (400, 160), title="Prompt")
    g.link(clip, 0, pos, "clip")
    guided = g.add("FluxGuidance", [4.0], (360, 510), (320, 58))
    g.link(pos, 0, guided, "conditioning")
    taca = taca_chain(g, unet)
    guider = g.add("BasicGuider", [], (800, 300), (240, 46))
    g.link(taca, 0, guider, "model")
    g.link(guided, 0, guider, "conditioning")
    noise = g.add("RandomNoise", [42, "fixed"], (800, 390), (320, 82))
    sampler = g.add("KSamplerSelect", ["euler"], (800, 510), (320, 58))
    sigmas = g.add("Flux2Scheduler", [20, 1024, 1024], (800, 610), (320, 106))
    latent = g.add("EmptyFlux2LatentImage", [1024, 1024, 1], (800, 760), (320, 106))
    sca = g.add("SamplerCustomAdvanced", [], (1150, 300), (270, 126))
    for src, name in ((noise, "noise"), (guider, "guider"), (sampler, "sampler"), (sigmas, "sigmas"),
                      (latent, "latent_image")):
        g.link(src, 0, sca, name)
    dec = g.add("VAEDecode", [], (1150, 470), (210, 46))
    g.link(sca, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    save = g.add("SaveImage", ["TACA_flux2_dev"], (1440, 300), (300, 330))
    g.link(dec, 0, save, "images")
    g.add("Note", [files_note("FLUX.2 dev", FLUX2_DEV.values(), requires)], (-380, 0), (340, 420))
    return g


TRAINED_LORA = "ComfyUI_trained_lora_taca_sd3.5_medium.safetensors"  # what the user names Save LoRA's file
TRAIN_NOTE = (
    "Train a TACA LoRA with ComfyUI's Train LoRA (SD3.5 medium + TACA)\n"
    "For ComfyUI 0.33.0 and newer (Train LoRA's inputs change between releases; these are 0.33.0's).\n" + DOWNLOADS +
    f"- checkpoints/{SD35['medium']['name']} (text encoders included)\n"
    "\nDataset: a folder in ComfyUI/input/ with images and, beside each, a .txt caption of the same name. "
    "Pick it in Load Image-Text.\n"
    "\nTACA Training Window: TACA (gamma 1.2) on every training step, and every training sample at "
    "timestep >= 970 (the paper's Eq. 13). No TACA Model Patch is needed while training.\n"
    "\nTrain LoRA, set as close to the paper (attention-layer LoRA, rank 16/64, alpha = rank, AdamW, lr 1e-4, "
    "batch 4) as core allows: batch_size 1 with grad_accumulation_steps 4 (a batch > 1 averages every "
    "caption over the whole batch), rank 16, AdamW. Core trains every layer with alpha = 1 (output scaled by "
    "1/rank): the learning rate is core's default; the paper gives no step count for a new dataset, so raise "
    "steps and judge the loss plot.\n"
    "\nSampling (bottom, muted): Save LoRA writes to ComfyUI/output/loras/. Move the file to "
    f"models/loras/ as {TRAINED_LORA} (or pick yours in TACA LoRA Loader), unmute the bottom nodes (Ctrl+M) "
    "and mute the training ones. TACA LoRA Loader + TACA Model Patch with the gamma and cutoff you trained with.")


def sd35_train():
    g = Graph("sd3.5_simple_example, with the medium checkpoint; the training nodes are core's (model/training)",
              requires={"comfyui": "0.33.0", "why": "Train LoRA's inputs change between releases; these are 0.33.0's"})
    g.taca["trained_files"] = [TRAINED_LORA]
    ckpt = g.loader("CheckpointLoaderSimple", [SD35["medium"]], [], (0, 0), (320, 98))
    data = g.add("LoadImageTextDataSetFromFolder", ["taca_dataset"], (0, 160), (320, 80), title="Images + captions")
    enc = g.add("VAEEncode", [], (360, 160), (210, 46))
    g.link(data, 0, enc, "pixels")
    g.link(ckpt, 2, enc, "vae")
    text = g.add("CLIPTextEncode", [""], (360, 240), (400, 100), title="Captions")
    g.widget_input(text, "text", "STRING")
    g.link(data, 1, text, "text")
    g.link(ckpt, 1, text, "clip")
    window = g.add("TACATrainingWindow", PAPER, (360, 0), (340, 130))
    g.link(ckpt, 0, window, "model")
    train = g.add("TrainLoraNode", [1, 4, 16, 0.0005, 16, "AdamW", "MSE", 0, "bf16", "bf16", False, "LoRA",
                                    True, 1, False, "[None]", False, False], (800, 0), (340, 560))
    g.link(window, 0, train, "model")
    g.link(enc, 0, train, "latents")
    g.link(text, 0, train, "positive")
    save = g.add("SaveLoRA", ["loras/ComfyUI_trained_lora_taca"], (1180, 0), (320, 80))
    g.link(train, 0, save, "lora")
    loss = g.add("LossGraphNode", ["loss_graph"], (1180, 120), (400, 400))
    g.link(train, 1, loss, "loss")
    # the second graph: sample with the trained LoRA (muted until the file exists)
    first = len(g.nodes)
    pos = g.add("CLIPTextEncode", ["A blue bench and a pink dog, the dog sitting to the right of the bench, in a "
                                   "snowy park"], (360, 900), (400, 160), title="Prompt")
    g.link(ckpt, 1, pos, "clip")
    neg = g.add("CLIPTextEncode", [""], (360, 1100), (400, 100), title="Negative")
    g.link(ckpt, 1, neg, "clip")
    latent = g.add("EmptySD3LatentImage", [1024, 1024, 1], (360, 1240), (320, 106))
    lora = g.add("TACALoraLoader", [TRAINED_LORA, 1.0, "while TACA acts"], (360, 700), (340, 130))
    g.link(ckpt, 0, lora, "model")
    taca = g.add("TACAModelPatch", PAPER, (720, 700), (340, 230))
    g.link(lora, 0, taca, "model")
    sampler_tail(g, taca, pos, neg, latent, ckpt, 1100, 900, "TACA_sd3.5_medium_trained", steps=30, cfg=4.5)
    for node in g.nodes[first:]:
        node["mode"] = 2  # muted
    g.add("Note", [TRAIN_NOTE], (-380, 0), (340, 640))
    return g


def qwen_image_21():
    """image_qwen_image_2_1_t2i without its optional prompt enhancer (TextGenerate): 25 steps, cfg 1, euler,
    1024x1024, the prefix cache node at its defaults. ComfyUI releases have the model from 0.37.0; the
    tests also run it on 0.33.0 with the model backported (model_file)."""
    requires = {"comfyui": "0.37.0", "why": "older ComfyUI releases have no Qwen-Image 2.1",
                "model_file": "comfy/ldm/qwen_image21/model.py"}
    g = Graph("image_qwen_image_2_1_t2i", requires)
    unet = g.loader("UNETLoader", [QWEN_IMAGE_21["unet"]], ["default"], (0, 0), (320, 82))
    clip = g.loader("CLIPLoader", [QWEN_IMAGE_21["clip"]], ["qwen_image", "default"], (0, 120), (320, 106))
    vae = g.loader("VAELoader", [QWEN_IMAGE_21["vae"]], [], (0, 270), (320, 58))
    encode = g.add("TextEncodeQwenImage21", [
        "A red fox in a yellow raincoat holding a blue umbrella, standing left of a green mailbox on a rainy "
        "street, a sign reading \"TACA\" above the door behind them", "", 1024], (360, 360), (400, 260))
    g.link(clip, 0, encode, "clip")
    cache = g.add("QwenImage21Cache", ["auto", "default"], (360, 0), (320, 82))
    g.link(unet, 0, cache, "model")
    taca = taca_chain(g, cache, pos=(720, 0))
    latent = g.add("EmptyLatentImage", [1024, 1024, 1], (360, 670), (320, 106))
    ks = g.add("KSampler", [42, "fixed", 25, 1.0, "euler", "simple", 1.0], (800, 360), (320, 262))
    g.link(taca, 0, ks, "model")
    g.link(encode, 0, ks, "positive")
    g.link(encode, 1, ks, "negative")
    g.link(latent, 0, ks, "latent_image")
    decode_and_save(g, ks, vae, 1140, 360, "TACA_qwen_image_2.1")
    note = files_note("Qwen-Image 2.1", QWEN_IMAGE_21.values(), requires) + (
        "\n\nTACA acts on the target image's attention to every text token only, never on the text and "
        "reference-image tokens that the Qwen Image 2.1 Cache node keeps from the first step: the cache stays "
        "on and gives the same image as without it. A TACA LoRA in 'while TACA acts' mode turns that cache off.")
    g.add("Note", [note], (-380, 0), (340, 480))
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
    "taca_flux1_dev_probe": flux_probe,
    "taca_qwen_image": qwen_image,
    "taca_z_image_turbo": z_image_turbo,
    "taca_krea2_turbo": krea2_turbo,
    "taca_flux2_dev": flux2_dev,
    "taca_sd3.5_medium_train_lora": sd35_train,
    "taca_qwen_image_2.1": qwen_image_21,
}

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, build in WORKFLOWS.items():
        (OUT / f"{name}.json").write_text(json.dumps(build().json(), indent=1) + "\n")
        print("wrote", OUT / f"{name}.json")
