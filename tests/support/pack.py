"""Import this repository, or another node pack, as a ComfyUI custom-node package (as ComfyUI does: by path)."""
import importlib.util
import os
import sys
from pathlib import Path

PACK_NAME = "comfyui_taca_under_test"
ROOT = Path(__file__).resolve().parents[2]
PEERS_ENV = "TACA_PEERS_DIR"  # the folder holding other packs the tests run beside ours (.ci/run sets it)


def import_package(name: str, root: Path):
    """Import the folder `root` as the package `name` (once)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_pack():
    return import_package(PACK_NAME, ROOT)


def load_peer(folder: str):
    """Another node pack, from $TACA_PEERS_DIR/<folder>; skips (fails under --strict) without it."""
    from .comfy_env import skip_or_fail
    peers = os.environ.get(PEERS_ENV)
    root = Path(peers).expanduser() / folder if peers else None
    if root is None or not (root / "__init__.py").is_file():
        skip_or_fail(f"set {PEERS_ENV} to a folder holding {folder} (see shared/peers/README.md; .ci/run extracts it)")
    return import_package(folder.replace("-", "_").lower() + "_peer", root)
