"""The example workflows as files: every loader says where to download its model files."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf")
LOADER_DIRECTORY = {  # the models/ folder each loader lists
    "UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders", "DualCLIPLoader": "text_encoders",
    "VAELoader": "vae", "CheckpointLoaderSimple": "checkpoints", "TACALoraLoader": "loras",
    "LoraLoaderModelOnly": "loras",
}
HF_FILE = re.compile(r"https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/[\w.-]+/(?:[\w.-]+/)*([\w.-]+)")


def test_there_are_workflows_for_the_new_families():
    names = {p.stem for p in WORKFLOWS}
    assert {"taca_qwen_image", "taca_z_image_turbo", "taca_krea2_turbo", "taca_flux2_dev"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_loader_carries_its_download(path):
    """properties.models: one {name, url, directory} per model file the node names, as ComfyUI's templates do."""
    wf = json.loads(path.read_text())
    trained = set(wf.get("extra", {}).get("taca", {}).get("trained_files", []))  # made by the workflow itself
    loaders = 0
    for node in wf["nodes"]:
        files = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and v.endswith(MODEL_SUFFIXES)]
        entries = (node.get("properties") or {}).get("models", [])
        where = f"{path.stem}: {node['type']} #{node['id']}"
        if files and set(files) <= trained:
            assert not entries, f"{where}: a file this workflow trains has no download"
            loaders += node["type"] in LOADER_DIRECTORY
            continue
        if node["type"] in LOADER_DIRECTORY:
            loaders += 1
            assert files, f"{where}: a loader without a model file"
        assert sorted(e["name"] for e in entries) == sorted(files), f"{where}: properties.models != its files"
        for entry in entries:
            assert set(entry) == {"name", "url", "directory"}, f"{where}: {entry}"
            assert entry["directory"] == LOADER_DIRECTORY[node["type"]], f"{where}: {entry}"
            match = HF_FILE.fullmatch(entry["url"])
            assert match and match.group(1) == entry["name"], f"{where}: {entry['url']} is not a download of it"
    assert loaders, f"{path.stem} has no loader"


@pytest.mark.parametrize("break_it", ["rename the file", "drop the url"])
def test_the_download_check_can_fail(tmp_path, break_it):
    wf = json.loads((ROOT / "workflows" / "taca_flux1_dev.json").read_text())
    vae = next(n for n in wf["nodes"] if n["type"] == "VAELoader")
    if break_it == "rename the file":
        vae["widgets_values"] = ["other_vae.safetensors"]
    else:
        vae["properties"]["models"][0].pop("url")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(wf))
    with pytest.raises(AssertionError):
        test_every_loader_carries_its_download(path)
