"""Shared by both tiers: tests/ on sys.path (the `support` package), and the pack imported as ComfyUI
imports it (a package, by path), as comfyui_taca_under_test."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from support.pack import load_pack  # noqa: E402

load_pack()
