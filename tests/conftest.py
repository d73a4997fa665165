"""Shared by both tiers: the pack is imported as ComfyUI imports it (a package, by path)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "integration"))
from pack import load_pack  # noqa: E402

load_pack()
