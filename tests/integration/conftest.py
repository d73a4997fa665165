"""Fixtures of the integration tier (each test module calls support.comfy_env.import_comfy() first)."""
import pytest


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    """A folder in ComfyUI's loras search path, for the LoRA files a test writes."""
    from support.comfy_env import import_comfy
    d = tmp_path_factory.mktemp("loras")  # one per module: names written by two modules never meet
    import_comfy().folder_paths.add_model_folder_path("loras", str(d))
    return d
