"""Make a real ComfyUI checkout importable for the integration tier, on the CPU.

Call `import_comfy()` at the top of every integration test module (it is idempotent). Without
COMFYUI_PATH it skips the calling module. The support package is imported as `support` (tests/ is on
sys.path), never as `tests.support`: once the ComfyUI root is at sys.path[0], ComfyUI's own `tests`
package (and its `nodes.py`, `utils/`) shadow same-named ones.
"""
import os
import sys
import types
from pathlib import Path

import pytest

SKIP_REASON = ("integration tier: set COMFYUI_PATH=/path/to/ComfyUI (a ComfyUI checkout, with its "
               "requirements installed) to run it")
# Set by `tools/run_tests.py --strict` (CI): a missing prerequisite fails instead of skipping.
REQUIRED = os.environ.get("TACA_REQUIRE_INTEGRATION") == "1"


def skip_or_fail(reason: str):
    """Skip the calling module, or fail it when the integration tier is required to run."""
    if REQUIRED:
        pytest.fail(f"required by TACA_REQUIRE_INTEGRATION=1 but unavailable: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

_env = None  # the namespace returned by the first successful call


def import_comfy(cpu=True):
    """Import ComfyUI from $COMFYUI_PATH with args.cpu forced; returns a namespace of its modules.

    cpu=False (the benchmarks' --device cuda) leaves ComfyUI's device choice alone.

    Returned attributes: path (the resolved checkout), comfy, folder_paths, model_management,
    version (ComfyUI's __version__ string, or "unknown").
    """
    global _env
    if _env is not None:
        return _env
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        skip_or_fail(SKIP_REASON)
    root = Path(path).expanduser().resolve()
    if not (root / "comfy" / "model_management.py").is_file():
        raise RuntimeError(f"COMFYUI_PATH={path!r} is not a ComfyUI checkout (no comfy/model_management.py)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    # comfy/cli_args.py builds its argparse parser at import time and calls parser.parse_args() on
    # sys.argv (pytest's!) only when comfy.options.args_parsing is True; it defaults to False, in
    # which case it parses [] and we get every default. Keep it off (same in 0.3.x and 0.8.x).
    import comfy.options
    if "comfy.cli_args" not in sys.modules:
        comfy.options.enable_args_parsing(False)
    import comfy.cli_args

    # model_management decides its device once, at import time, from args.cpu.
    comfy.cli_args.args.cpu = cpu
    already = "comfy.model_management" in sys.modules
    import comfy.model_management as mm
    if already and cpu and mm.cpu_state != mm.CPUState.CPU:
        raise RuntimeError("comfy.model_management was imported before import_comfy() forced args.cpu")

    import folder_paths  # ComfyUI's root-level module (needs the root on sys.path and comfy.cli_args)

    try:
        import comfyui_version
        version = comfyui_version.__version__
    except ImportError:
        version = "unknown"

    _env = types.SimpleNamespace(path=root, comfy=sys.modules["comfy"], folder_paths=folder_paths,
                                 model_management=mm, version=version)
    return _env
