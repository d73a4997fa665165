"""Start a real ComfyUI server (--cpu, 127.0.0.1) with this pack in custom_nodes/, for the frontend tier."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .pack import ROOT

PACK_DIR_NAME = "ComfyUI-TACA"
# model files the example workflows name: empty placeholders, so the loaders' lists hold them
MODEL_FILES = {
    "diffusion_models": ["flux1-dev.safetensors", "qwen_image_fp8_e4m3fn.safetensors", "z_image_turbo_bf16.safetensors",
                         "krea2_turbo_fp8_scaled.safetensors", "flux2_dev_fp8mixed.safetensors",
                         "qwen_image_2.1_int8_convrot.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors", "qwen_2.5_vl_7b_fp8_scaled.safetensors",
                      "qwen_3_4b.safetensors", "qwen3vl_4b_fp8_scaled.safetensors",
                      "mistral_3_small_flux2_bf16.safetensors", "qwen3vl_8b_int8_convrot.safetensors"],
    "vae": ["ae.safetensors", "qwen_image_vae.safetensors", "flux2-vae.safetensors",
            "qwen_image_2.1_vae_bf16.safetensors"],
    "checkpoints": ["sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors", "sd3.5_large_fp8_scaled.safetensors"],
    "loras": ["taca_flux1_dev_r64.safetensors", "taca_sd3.5_medium_r64.safetensors"],
}
# LoRAs a workflow trains itself (extra.taca.trained_files; no download): placeholders too
MODEL_FILES["loras"] += sorted({name for wf in (Path(__file__).resolve().parents[2] / "workflows").glob("*.json")
                                for name in json.loads(wf.read_text()).get("extra", {}).get("taca", {})
                                .get("trained_files", [])})
INPUT_FOLDERS = ["taca_dataset"]  # the training workflow's dataset folder (ComfyUI/input/<folder>)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post_json(url, body, timeout=30):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())


class ComfyServer:
    def __init__(self, comfy_path: Path, base_dir: Path, extra_nodes=(), args=()):
        """extra_nodes: folders of test-only custom nodes linked beside the pack; args: more server flags."""
        self.base_dir = base_dir
        self.comfy_path = comfy_path
        self.args = list(args)
        (base_dir / "custom_nodes").mkdir(parents=True)
        (base_dir / "custom_nodes" / PACK_DIR_NAME).symlink_to(ROOT, target_is_directory=True)
        for folder in extra_nodes:
            (base_dir / "custom_nodes" / Path(folder).name).symlink_to(Path(folder), target_is_directory=True)
        for folder, names in MODEL_FILES.items():
            (base_dir / "models" / folder).mkdir(parents=True, exist_ok=True)
            for name in names:
                (base_dir / "models" / folder / name).touch()
        for folder in INPUT_FOLDERS:
            (base_dir / "input" / folder).mkdir(parents=True, exist_ok=True)
        settings = base_dir / "user" / "default" / "comfy.settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(json.dumps({"Comfy.TutorialCompleted": True}))  # no first-run template browser
        self.log_path = base_dir / "server.log"
        self.start()

    def start(self):
        """Starts the server process on this base directory (again, after kill)."""
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
             "--base-directory", str(self.base_dir), "--disable-auto-launch", *self.args],
            cwd=self.comfy_path, stdout=self.log_path.open("a"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def kill(self):
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        self.proc.kill()
        self.proc.wait(20)

    def wait_ready(self, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                get_json(self.url + "/object_info/KSampler", timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer in {timeout}s:\n{self.log()[-3000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
