"""Import this repository as a ComfyUI custom-node package (as ComfyUI does: by path)."""
import importlib.util
import sys
from pathlib import Path

PACK_NAME = "comfyui_taca_under_test"
ROOT = Path(__file__).resolve().parents[2]


def load_pack():
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_NAME]
