"""Thumbnails (workflows/<name>.jpg) and README images (docs/) from the browser test's screenshots.

    TACA_SCREENSHOT_DIR=/tmp/shots COMFYUI_PATH=... pytest tests/integration/test_frontend.py
    python tools/make_thumbnails.py /tmp/shots
"""
import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CANVAS_BOX = (70, 45, 1590, 740)  # the graph area of a 1600x1000 screenshot, without side bars and minimap


def main(shots: Path):
    for shot in sorted(shots.glob("workflow_*.png")):
        name = shot.stem[len("workflow_"):]
        img = Image.open(shot).convert("RGB").crop(CANVAS_BOX)
        img.thumbnail((640, 400))
        img.save(ROOT / "workflows" / f"{name}.jpg", quality=85)
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    Image.open(shots / "workflow_taca_flux1_dev_lora.png").convert("RGB").crop(CANVAS_BOX).save(
        docs / "workflow_flux1_dev_lora.png")
    for shot in sorted(shots.glob("schedule_preview_*.png")):
        shutil.copy(shot, docs / shot.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
