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


def _node_ids():
    """The node_id of every node in nodes/*.py: a string literal, or a module constant holding one."""
    ids = []
    for path in sorted((ROOT / "nodes").glob("*.py")):
        source = path.read_text()
        for literal, name in re.findall(r'node_id=(?:"([^"]+)"|([A-Za-z_]\w*))', source):
            if name:
                literal = re.search(rf'^{name}\s*=\s*"([^"]+)"', source, re.M).group(1)
            ids.append(literal)
    return ids


def test_every_node_has_a_help_page():
    """ComfyUI's frontend shows web/docs/<node id>.md (served under the pack's web directory) as a node's help."""
    ids = _node_ids()
    assert {"TACAModelPatch", "TACALoraLoader"} <= set(ids)
    for node_id in ids:
        page = ROOT / "web" / "docs" / f"{node_id}.md"
        assert page.is_file(), f"no help page {page.relative_to(ROOT)}"
        text = page.read_text()
        assert text.startswith("# ") and len(text) > 500, f"{page.name} is not a help page"
        assert "FLUX.1-dev and SD3.5 medium" in text, f"{page.name}: say where the paper's defaults were validated"
