"""What ComfyUI-Manager and the Comfy Registry read."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_registry_metadata_is_complete():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    for field in ("name", "version", "description", "license"):
        assert project.get(field), field
    assert project["urls"].get("Repository")
    for field in ("PublisherId", "DisplayName", "Icon"):
        assert comfy.get(field), field
    assert (ROOT / comfy["Icon"].split("/main/", 1)[1]).is_file(), "the icon the registry links to is in the repo"
    assert not any(re.match(r"torch", d) for d in project.get("dependencies", []))


def test_installing_never_touches_torch():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert not [line for line in lines if re.match(r"(torch|torchvision|torchaudio)\b", line)]


def test_web_directory_and_entrypoint_are_declared():
    init = (ROOT / "__init__.py").read_text()
    assert 'WEB_DIRECTORY = "./web"' in init and "comfy_entrypoint" in init
    assert list((ROOT / "web").glob("*.js"))
