"""What a ComfyUI user sees: the real server and the real frontend (headless Chromium), with this pack."""
import json
import os
import shutil
from pathlib import Path

import pytest

from comfy_env import SKIP_REASON, skip_or_fail
from comfy_server import PACK_DIR_NAME, ComfyServer, get_json
from pack import ROOT

if not os.environ.get("COMFYUI_PATH"):
    skip_or_fail(SKIP_REASON)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUR_NODES = ["TACAModelPatch", "TACALoraLoader", "TACAAttentionProbe", "TACAProbePlot"]
WORKFLOWS = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ComfyServer(Path(os.environ["COMFYUI_PATH"]), tmp_path_factory.mktemp("comfy_base"))
    try:
        yield s.wait_ready()
    finally:
        s.stop()


def test_frontend_is_the_one_this_comfyui_pins():
    """Browser results mean something only on the frontend the release ships with."""
    import importlib.metadata
    import re
    reqs = (Path(os.environ["COMFYUI_PATH"]) / "requirements.txt").read_text()
    pinned = re.search(r"^comfyui-frontend-package==(\S+)", reqs, re.M).group(1)
    try:
        installed = importlib.metadata.version("comfyui-frontend-package")
    except importlib.metadata.PackageNotFoundError:
        installed = "none"
    if installed != pinned:
        skip_or_fail(f"this ComfyUI pins comfyui-frontend-package=={pinned}, {installed} is installed: "
                     "run tools/run_tests.py --install, which puts the pinned one beside each checkout")


@pytest.fixture(scope="module")
def object_info(server):
    return get_json(server.url + "/object_info", timeout=60)


def test_pack_imports_without_error(server, object_info):
    log = server.log()
    failed = [line for line in log.splitlines() if "IMPORT FAILED" in line and PACK_DIR_NAME in line]
    assert not failed, failed
    assert all(n in object_info for n in OUR_NODES), log[-3000:]


@pytest.mark.parametrize("node", OUR_NODES)
def test_nodes_have_descriptions_and_tooltips(object_info, node):
    info = object_info[node]
    assert info["description"] and info["display_name"].startswith("TACA")
    for name, spec in {**info["input"]["required"], **info["input"].get("optional", {})}.items():
        assert len(spec) > 1 and spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert all(info.get("output_tooltips", [None])), f"{node} output has no tooltip"


def test_workflows_are_listed_with_thumbnails(server):
    listed = get_json(server.url + "/api/workflow_templates")
    assert sorted(listed.get(PACK_DIR_NAME, [])) == WORKFLOWS and len(WORKFLOWS) >= 4
    for name in WORKFLOWS:
        get_json(f"{server.url}/api/workflow_templates/{PACK_DIR_NAME}/{name}.json")
        thumb = ROOT / "workflows" / f"{name}.jpg"
        assert thumb.is_file() and thumb.stat().st_size > 1000, f"no thumbnail for {name}"


def _widget_specs(info):
    """(name, type, options) of a node's widget inputs, in the order widgets_values holds them."""
    out = []
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            kind, opts = spec[0], (spec[1] if len(spec) > 1 else {}) or {}
            if isinstance(kind, list):
                kind, opts = "COMBO", {**opts, "options": kind}
            if kind in WIDGET_TYPES:
                out.append((name, kind, opts))
                if opts.get("control_after_generate"):
                    out.append((name + ":control", "CONTROL", {}))
    return out


def _check_value(node_type, name, kind, opts, value):
    where = f"{node_type}.{name}={value!r}"
    if kind == "COMBO":
        assert value in opts["options"], f"{where} not in {opts['options'][:10]}"
    elif kind in ("INT", "FLOAT"):
        assert isinstance(value, (int, float)), where
        assert opts.get("min", value) <= value <= opts.get("max", value), where
    elif kind == "STRING":
        assert isinstance(value, str), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    elif kind == "CONTROL":
        assert value in ("fixed", "increment", "decrement", "randomize"), where


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_nodes_links_and_widgets_are_valid(object_info, name):
    wf = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert any(n["type"] == "TACAModelPatch" for n in nodes.values())
    assert any(n["type"] == "Note" for n in nodes.values()), "a Note says what to download"
    for node in nodes.values():
        if node["type"] in FRONTEND_ONLY:
            continue
        assert node["type"] in object_info, f"unknown node type {node['type']}"
        info = object_info[node["type"]]
        specs = _widget_specs(info)
        values = node.get("widgets_values", [])
        assert len(values) <= len(specs), f"{node['type']}: {len(values)} values for {len(specs)} widgets"
        for (wname, kind, opts), value in zip(specs, values):
            _check_value(node["type"], wname, kind, opts, value)
    inputs = {t: {**i["input"]["required"], **i["input"].get("optional", {})} for t, i in object_info.items()}
    for link_id, src, src_slot, dst, dst_slot, type_ in wf["links"]:
        src_node, dst_node = nodes[src], nodes[dst]
        assert object_info[src_node["type"]]["output"][src_slot] == type_
        in_name = dst_node["inputs"][dst_slot]["name"]
        assert inputs[dst_node["type"]][in_name][0] == type_, f"{name}: link {link_id} into {in_name}"


# --- the browser -------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(server):
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        skip_or_fail("browser tier: pip install playwright (the driver only; Chromium comes from Debian's "
                     "chromium package)")
    if not Path(CHROMIUM).exists():
        skip_or_fail("browser tier: install Debian's chromium package (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url)
        page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120000)
        page.wait_for_timeout(1500)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = Path(os.environ.get("TACA_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_workflow(page, name):
    wf = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    page.evaluate("""async wf => {
        await window.app.loadGraphData(wf);
        window.app.canvas.ds.scale = 0.7;  // readable screenshots: far zoomed out, the canvas drops text
        window.app.canvas.ds.offset = [500, 150];
        window.app.graph.setDirtyCanvas(true, true);
    }""", wf)
    page.wait_for_timeout(800)


def missing_node_types(page):
    return page.evaluate("""() => window.app.graph._nodes
        .filter(n => !window.LiteGraph.registered_node_types[n.type] || n.has_errors)
        .map(n => n.type)""")


def visible_dialog_texts(page):
    return page.evaluate("""() => [...document.querySelectorAll('[role=dialog], .p-dialog, .comfy-modal')]
        .filter(e => e.offsetParent !== null).map(e => e.innerText.slice(0, 300))""")


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_loads_in_the_frontend(page, shots, name):
    load_workflow(page, name)
    assert missing_node_types(page) == []
    dialogs = visible_dialog_texts(page)
    assert not any("missing" in d.lower() for d in dialogs), dialogs
    page.screenshot(path=str(shots / f"workflow_{name}.png"))


def test_the_missing_node_check_can_fail(page):
    """The check above would see a node type the server does not have."""
    wf = json.loads((ROOT / "workflows" / "taca_flux1_dev.json").read_text())
    wf["nodes"][0]["type"] = "NotARealTACANode"
    page.evaluate("async wf => { await window.app.loadGraphData(wf); }", wf)
    page.wait_for_timeout(800)
    found = missing_node_types(page) or [d for d in visible_dialog_texts(page) if "missing" in d.lower()]
    page.keyboard.press("Escape")
    assert found


def preview_state(page, node_type="TACAModelPatch"):
    return page.evaluate("""type => {
        const e = document.querySelector(`.taca-schedule-preview[data-node-type=${type}]`);
        if (!e || e.offsetParent === null) return null;
        return {cutoff: e.dataset.cutoff, steps: e.querySelector('.taca-schedule-steps').innerText,
                width: e.querySelector('.taca-schedule-window').style.width,
                caption: e.querySelector('.taca-schedule-caption').innerText,
                box: e.getBoundingClientRect().height};
    }""", node_type)


def zoom_on(page, node_type):
    page.evaluate("""type => {  // 100% on the node: the frontend hides DOM widgets when zoomed far out
        const node = window.app.graph._nodes.find(n => n.type === type);
        window.app.canvas.ds.scale = 1;
        window.app.canvas.centerOnNode(node);
        window.app.graph.setDirtyCanvas(true, true);
    }""", node_type)
    page.wait_for_timeout(500)


def set_widget(page, node_type, name, value):
    page.evaluate("""([type, name, value]) => {
        const node = window.app.graph._nodes.find(n => n.type === type);
        const w = node.widgets.find(w => w.name === name);
        w.value = value;
        w.callback?.(w.value);
        window.app.graph.setDirtyCanvas(true, true);
    }""", [node_type, name, value])
    page.wait_for_timeout(500)


def test_schedule_preview_renders_and_follows_the_cutoff(page, shots):
    load_workflow(page, "taca_flux1_dev")
    zoom_on(page, "TACAModelPatch")
    before = preview_state(page)
    assert before and before["cutoff"] == "970" and before["box"] > 40
    assert "FLUX.1, 30 steps: steps 1–3 of 30" in before["steps"]  # the official code's first 3 of 30
    page.locator(".taca-schedule-preview").first.screenshot(path=str(shots / "schedule_preview_970.png"))
    set_widget(page, "TACAModelPatch", "timestep_cutoff", 800)
    after = preview_state(page)
    assert after["cutoff"] == "800" and after["steps"] != before["steps"] and after["width"] != before["width"]
    page.locator(".taca-schedule-preview").first.screenshot(path=str(shots / "schedule_preview_800.png"))
    saved = page.evaluate("""() => window.app.graph._nodes.find(n => n.type === 'TACAModelPatch')
        .serialize().widgets_values""")
    assert saved == [1.2, 800], "the preview must not add to the saved widget values"


def test_lora_preview_follows_the_linked_patch(page, shots):
    load_workflow(page, "taca_flux1_dev_lora")
    zoom_on(page, "TACALoraLoader")
    state = preview_state(page, "TACALoraLoader")
    assert state and state["cutoff"] == "970" and "LoRA active with TACA" in state["caption"]
    set_widget(page, "TACAModelPatch", "timestep_cutoff", 850)
    page.evaluate("() => window.app.canvas.draw(true, true)")
    assert preview_state(page, "TACALoraLoader")["cutoff"] == "850"
    set_widget(page, "TACAModelPatch", "gamma", 1.0)
    page.evaluate("() => window.app.canvas.draw(true, true)")
    assert "never active" in preview_state(page, "TACALoraLoader")["caption"]
    page.locator(".taca-schedule-preview[data-node-type=TACALoraLoader]").first.screenshot(
        path=str(shots / "schedule_preview_lora.png"))
    page.evaluate("""() => {  // unlink the patch: the LoRA falls back to the paper's window
        const lora = window.app.graph._nodes.find(n => n.type === 'TACALoraLoader');
        lora.disconnectOutput(0);
        window.app.canvas.draw(true, true);
    }""")
    page.wait_for_timeout(300)
    state = preview_state(page, "TACALoraLoader")
    assert state["cutoff"] == "970" and "no TACA Model Patch" in state["caption"]
