"""Makes docs/probe_tiny_flux.png: the probe's plot on a tiny random FLUX-shaped model (no weights here).

    COMFYUI_PATH=/path/to/ComfyUI python tools/make_probe_plot.py
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' support package

from support.comfy_env import import_comfy  # noqa: E402
from support.pack import load_pack  # noqa: E402

import_comfy()
load_pack()  # as comfyui_taca_under_test
from comfyui_taca_under_test.nodes.taca_probe import TACAAttentionProbe, TACAProbePlot  # noqa: E402
from support.taca import patch  # noqa: E402
from support.tiny_models import make_conds, run_sample, tiny_flux  # noqa: E402

DIMS = dict(hidden_size=128, num_heads=4, depth=4, depth_single_blocks=8, axes_dim=[8, 12, 12])
STEPS, TXT, LATENT_HW = 20, 32, (32, 32)


def main():
    model = patch(tiny_flux(seed=0, **DIMS), gamma=1.2, cutoff=970)
    model, probe = TACAAttentionProbe.execute(model=model).result
    pos, neg = make_conds("flux", TXT)
    out = run_sample(model, pos, neg, steps=STEPS, latent_hw=LATENT_HW)
    title = (f"tiny random FLUX-shaped model (hidden 128, 4 double + 8 single blocks), {TXT} text + "
             f"{LATENT_HW[0] * LATENT_HW[1] // 4} image tokens, {STEPS} steps, gamma 1.2, cutoff 970")
    image, _ = TACAProbePlot.execute(probe=probe, samples={"samples": out}, title=title).result
    from PIL import Image
    Image.fromarray((image[0].numpy() * 255).round().astype("uint8")).save(ROOT / "docs" / "probe_tiny_flux.png")


if __name__ == "__main__":
    main()
