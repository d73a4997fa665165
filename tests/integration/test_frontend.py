"""What a ComfyUI user sees: the real server and the real frontend (headless Chromium), with this pack."""
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from support.comfy_env import SKIP_REASON, skip_or_fail
from support.comfy_server import PACK_DIR_NAME, ComfyServer, get_json, post_json
from support.pack import ROOT

if not os.environ.get("COMFYUI_PATH"):
    skip_or_fail(SKIP_REASON)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUR_NODES = ["TACAModelPatch", "TACALoraLoader", "TACAAttentionProbe", "TACAProbePlot"]
WORKFLOWS = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
ROUTE = "/taca/schedule_preview"  # the pack's route the schedule preview asks


def _version_tuple(version):
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def comfyui_version():
    text = (Path(os.environ["COMFYUI_PATH"]) / "comfyui_version.py").read_text()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def read_workflow(name):
    return json.loads((ROOT / "workflows" / f"{name}.json").read_text())


def skip_if_release_lacks_the_model(name):
    """A workflow for a model newer than this ComfyUI (extra.taca.requires): skip it here, with the reason."""
    requires = read_workflow(name).get("extra", {}).get("taca", {}).get("requires")
    backported = bool(requires and requires.get("model_file")
                      and (Path(os.environ["COMFYUI_PATH"]) / requires["model_file"]).is_file())
    if requires and _version_tuple(comfyui_version()) < _version_tuple(requires["comfyui"]) and not backported:
        pytest.skip(f"{name} needs ComfyUI >= {requires['comfyui']}: {requires['why']} "
                    f"(this is {comfyui_version()})")


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
    skip_if_release_lacks_the_model(name)
    wf = read_workflow(name)
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


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_loaders_say_where_to_download_their_files(server, object_info, name):
    """Every model file a node picks from a list has a properties.models entry, whose directory is the folder
    that list comes from (the frontend offers to download it there when it is missing)."""
    skip_if_release_lacks_the_model(name)
    wf = read_workflow(name)
    trained = set(wf.get("extra", {}).get("taca", {}).get("trained_files", []))  # made by the workflow itself
    folders = {}
    for node in wf["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        specs = _widget_specs(object_info[node["type"]])
        picked = [v for (_, kind, _), v in zip(specs, node.get("widgets_values", []))
                  if kind == "COMBO" and isinstance(v, str) and v.endswith((".safetensors", ".sft")) and v not in trained]
        entries = node["properties"].get("models", [])
        assert sorted(e["name"] for e in entries) == sorted(picked), f"{name}: {node['type']} #{node['id']}"
        for entry in entries:
            if entry["directory"] not in folders:
                folders[entry["directory"]] = get_json(f"{server.url}/models/{entry['directory']}")
            assert entry["name"] in folders[entry["directory"]], f"{name}: {entry} is not in that folder"
            assert entry["url"].startswith("https://huggingface.co/") and entry["url"].endswith("/" + entry["name"])


@pytest.mark.parametrize("node", OUR_NODES)
def test_help_page_is_served_where_the_frontend_looks(server, object_info, node):
    """The frontend fetches a custom node's help from /extensions/<pack>/docs/<node>.md, <pack> being the
    second part of the node's python_module; it ignores an answer that is not OK or is text/html."""
    module = object_info[node]["python_module"].split(".")
    assert module[0] == "custom_nodes"
    pack = module[1].split("@")[0]
    with urllib.request.urlopen(f"{server.url}/extensions/{pack}/docs/{node}.md", timeout=10) as r:
        assert r.status == 200 and "text/html" not in r.headers.get("Content-Type", "")
        assert r.read().decode() == (ROOT / "web" / "docs" / f"{node}.md").read_text()


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
    wf = read_workflow(name)
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
    """Dialogs, and the error overlay that newer frontends (1.4x) show for missing nodes and models."""
    return page.evaluate("""() => [...document.querySelectorAll(
            '[role=dialog], .p-dialog, .comfy-modal, [data-testid=error-overlay]')]
        .filter(e => e.offsetParent !== null).map(e => e.innerText.slice(0, 300))""")


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_loads_in_the_frontend(page, shots, name):
    skip_if_release_lacks_the_model(name)
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


def offered_downloads(page, filename):
    """The visible download controls next to a mention of filename (opening the error details on 1.4x)."""
    details = page.locator("[data-testid=error-overlay] button", has_text="View details")
    if details.count():
        details.first.click()
        page.wait_for_timeout(800)
    return page.evaluate("""name => [...document.querySelectorAll('button, a, [role=button]')]
        .filter(b => b.offsetParent !== null)
        .filter(b => /download/i.test(b.innerText + ' ' + (b.getAttribute('aria-label') || '')))
        .filter(b => {  // the control sits in the entry (or dialog) that names the file
            let a = b;
            for (let i = 0; i < 6 && a && !(a.innerText || '').includes(name); i++) a = a.parentElement;
            return a && (a.innerText || '').includes(name);
        })
        .map(b => b.innerText.trim())""", filename)


def open_fresh(page, server):
    """Reload without the open workflows (the frontend reopens them, with their missing-model dialogs)."""
    page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    page.goto(server.url)
    page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120000)
    page.wait_for_timeout(1500)


def test_a_missing_model_is_offered_for_download(page, server):
    """With properties.models the frontend offers the download of a missing file; without it, it cannot."""
    missing = "flux1-dev-not-here.safetensors"
    offers = {}
    try:
        for with_models in (True, False):
            wf = read_workflow("taca_flux1_dev")
            unet = next(n for n in wf["nodes"] if n["type"] == "UNETLoader")
            unet["widgets_values"][0] = missing
            if with_models:
                unet["properties"]["models"][0].update(name=missing, url=unet["properties"]["models"][0]["url"]
                                                       .replace("flux1-dev.safetensors", missing))
            else:
                del unet["properties"]["models"]
            page.evaluate("async wf => { await window.app.loadGraphData(wf); }", wf)
            page.wait_for_timeout(1500)
            offers[with_models] = offered_downloads(page, missing)
            open_fresh(page, server)
    finally:
        open_fresh(page, server)
    assert offers[True], "no download offered for a missing model that has properties.models"
    assert not offers[False], offers[False]


@pytest.mark.parametrize("node", OUR_NODES)
def test_node_info_shows_the_help_page(page, server, node):
    """The selection toolbox's Node Info opens web/docs/<node>.md as the node's help."""
    expected = [line.lstrip("#").strip() for line in (ROOT / "web" / "docs" / f"{node}.md").read_text().splitlines()
                if line.startswith(("# ", "## "))]
    load_workflow(page, next(name for name in WORKFLOWS
                             if f'"type": "{node}"' in (ROOT / "workflows" / f"{name}.json").read_text()))
    page.evaluate("""type => {
        const node = window.app.graph._nodes.find(n => n.type === type);
        window.app.canvas.ds.scale = 1;
        window.app.canvas.centerOnNode(node);
        window.app.canvas.selectNode(node);
        window.app.graph.setDirtyCanvas(true, true);
    }""", node)
    page.wait_for_timeout(500)
    try:
        page.locator("[data-testid=info-button]").first.click()
        page.wait_for_function("""n => [...document.querySelectorAll('.markdown-content h2')]
            .filter(e => e.offsetParent !== null).length >= n""", arg=len(expected) - 1, timeout=15000)
        headings = page.evaluate("""() => [...document.querySelectorAll('.markdown-content h1, .markdown-content h2')]
            .filter(e => e.offsetParent !== null).map(e => e.innerText.trim())""")
    finally:
        open_fresh(page, server)
    assert headings == expected


def preview_state(page, node_type="TACAModelPatch"):
    settle(page, node_type)
    return page.evaluate("""type => {  // the preview of this graph's node (a cleared graph's may linger)
        const node = window.app.graph._nodes.find(n => n.type === type);
        const e = node?.widgets?.find(w => w.name === 'taca_schedule')?.element;
        if (!e || e.offsetParent === null) return null;
        const text = c => e.querySelector(c)?.innerText ?? null;
        return {...e.dataset, steps: text('.taca-schedule-steps'), caption: text('.taca-schedule-caption'),
                note: text('.taca-schedule-note'), lo: e.querySelector('.taca-schedule-axis')?.dataset.lo,
                width: e.querySelector('.taca-schedule-window')?.style.width,
                error: text('.taca-schedule-error'),
                rows: [...e.querySelectorAll('.taca-schedule-row')].map(r => ({...r.dataset})),
                box: e.getBoundingClientRect().height};
    }""", node_type)


def settle(page, node_type):
    """Wait for the preview's answer: the redraw asks the route after a debounce (200 ms)."""
    redraw(page)
    page.wait_for_timeout(300)
    page.wait_for_function("""type => {
        const node = window.app.graph._nodes.find(n => n.type === type);
        const e = node?.widgets?.find(w => w.name === 'taca_schedule')?.element;
        return e && e.dataset.mode && !e.dataset.pending;
    }""", arg=node_type, timeout=15000)


def preview_shot(page, node_type, path):
    page.evaluate("""type => {
        document.querySelectorAll('[data-taca-shot]').forEach(e => e.removeAttribute('data-taca-shot'));
        const node = window.app.graph._nodes.find(n => n.type === type);
        node.widgets.find(w => w.name === 'taca_schedule').element.setAttribute('data-taca-shot', '1');
    }""", node_type)
    page.locator("[data-taca-shot]").screenshot(path=str(path))


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


def redraw(page):
    page.evaluate("() => window.app.canvas.draw(true, true)")
    page.wait_for_timeout(300)


def build_graph(page, nodes, links):
    """A graph made in the page: nodes {key: (type, {widget: value})}, links [(key, output, key, input name)].
    False when this frontend/server has no such node type. Give every widget a test relies on: frontend
    1.48 hands a cleared graph's widget values on to new nodes that get the same ids."""
    return page.evaluate("""([nodes, links]) => {
        const g = window.app.graph, made = {};
        if (Object.values(nodes).some(([type]) => !window.LiteGraph.registered_node_types[type])) return false;
        g.clear();
        let x = 50;
        for (const [key, [type, widgets]] of Object.entries(nodes)) {
            const n = window.LiteGraph.createNode(type);
            n.pos = [x, 100]; x += 340;
            g.add(n);
            for (const [name, value] of Object.entries(widgets)) n.widgets.find(w => w.name === name).value = value;
            made[key] = n;
        }
        for (const [a, out, b, input] of links) {
            made[a].connect(out, made[b], made[b].inputs.findIndex(i => i.name === input));
        }
        g.setDirtyCanvas(true, true);
        return true;
    }""", [nodes, links])


# ComfyUI's own answer for the preview: the steps KSampler / Flux2Scheduler run and, by the pack's own
# sigma -> timestep conversion, those gamma acts on.
def comfy_gamma_steps(cutoff, steps, scheduler="simple", denoise=1.0, family="Flux", flux2_size=None,
                      shift=None):
    import importlib
    import types

    from support.comfy_env import import_comfy
    import_comfy()
    import comfy.model_base
    import comfy.model_sampling
    import comfy.samplers
    import comfy.supported_models
    from comfyui_taca_under_test.taca_core.schedule import paper_timestep
    if shift is not None:  # ModelSamplingAuraFlow(shift)
        ms = comfy.model_sampling.ModelSamplingDiscreteFlow()
        ms.set_parameters(shift=shift, multiplier=1.0)
    else:
        config = types.SimpleNamespace(sampling_settings=getattr(comfy.supported_models, family).sampling_settings)
        ms = comfy.model_base.model_sampling(config, comfy.model_base.ModelType.FLUX)
    if flux2_size:
        flux = importlib.import_module("comfy_extras.nodes_flux")
        sigmas = flux.Flux2Scheduler.execute(steps=steps, width=flux2_size[0], height=flux2_size[1]).args[0]
    else:
        model = types.SimpleNamespace(get_model_object=lambda name: ms)
        sigmas = comfy.samplers.KSampler(model, steps, "cpu", sampler="euler", scheduler=scheduler,
                                         denoise=denoise).sigmas
    t = paper_timestep(ms, sigmas[:-1]).tolist()
    return ",".join(str(i + 1) for i, x in enumerate(t) if x >= cutoff)


def test_schedule_preview_shows_the_samplers_steps_and_follows_the_cutoff(page, shots):
    load_workflow(page, "taca_flux1_dev")
    zoom_on(page, "TACAModelPatch")
    before = preview_state(page)
    assert before and before["cutoff"] == "970" and before["box"] > 60
    assert before["mode"] == "sampler" and before["steps"] == "your sampler: steps 1–2 of 20 (simple, denoise 1.00)"
    assert before["tacaSteps"] == comfy_gamma_steps(970, 20) == "1,2"
    assert ("KSampler · FLUX.1 (file flux1-dev.safetensors), default sampling: ModelSamplingFlux shift 1.15"
            in before["note"]), before["note"]
    preview_shot(page, "TACAModelPatch", shots / "schedule_preview_970.png")
    set_widget(page, "TACAModelPatch", "timestep_cutoff", 800)
    after = preview_state(page)
    assert after["cutoff"] == "800" and after["tacaSteps"] == comfy_gamma_steps(800, 20)
    assert after["steps"] != before["steps"] and after["lo"] != before["lo"]
    preview_shot(page, "TACAModelPatch", shots / "schedule_preview_800.png")
    saved = page.evaluate("""() => window.app.graph._nodes.find(n => n.type === 'TACAModelPatch')
        .serialize().widgets_values""")
    assert saved == [1.2, 800], "the preview must not add to the saved widget values"


def test_schedule_preview_follows_the_samplers_steps_scheduler_and_denoise(page, server, shots):
    load_workflow(page, "taca_flux1_dev")
    zoom_on(page, "TACAModelPatch")
    set_widget(page, "KSampler", "steps", 30)
    state = preview_state(page)
    assert state["tacaSteps"] == comfy_gamma_steps(970, 30) == "1,2,3"  # the official code's first 3 of 30
    assert state["steps"].startswith("your sampler: steps 1–3 of 30 (simple") and state["mode"] == "sampler"
    for scheduler, denoise in [("beta", 1.0), ("beta", 0.8), ("normal", 0.6), ("karras", 1.0)]:
        set_widget(page, "KSampler", "scheduler", scheduler)
        set_widget(page, "KSampler", "denoise", denoise)
        state = preview_state(page)
        want = comfy_gamma_steps(970, 30, scheduler, denoise)
        assert state["tacaSteps"] == want, (scheduler, denoise)
        assert f"({scheduler}, denoise {denoise:.2f})" in state["steps"], state["steps"]
    # a model node between the patch and the sampler sets the sampling: its shift is read
    assert page.evaluate("""() => {
        const g = window.app.graph, ks = g._nodes.find(n => n.type === 'KSampler');
        const patch = g._nodes.find(n => n.type === 'TACAModelPatch');
        const ms = window.LiteGraph.createNode('ModelSamplingAuraFlow');
        ms.pos = [patch.pos[0] + 60, patch.pos[1] - 180];
        g.add(ms);
        ms.widgets.find(w => w.name === 'shift').value = 3.1;
        patch.connect(0, ms, 0);
        ms.connect(0, ks, ks.inputs.findIndex(i => i.name === 'model'));
        g.setDirtyCanvas(true, true);
        return ks.getInputNode(0) === ms;
    }""")
    set_widget(page, "KSampler", "scheduler", "simple")
    set_widget(page, "KSampler", "denoise", 1.0)
    redraw(page)
    state = preview_state(page)
    assert "ModelSamplingAuraFlow: ModelSamplingDiscreteFlow shift 3.1" in state["note"], state["note"]
    assert state["tacaSteps"] == comfy_gamma_steps(970, 30, shift=3.1)
    page.evaluate("""() => {  // no sampler: the typical schedules
        const ks = window.app.graph._nodes.find(n => n.type === 'KSampler');
        ks.disconnectInput(0);
        window.app.graph.setDirtyCanvas(true, true);
    }""")
    redraw(page)
    state = preview_state(page)
    assert state["mode"] == "typical" and "no sampler linked" in state["note"]
    rows = {(r["label"], r["steps"]): r["tacaSteps"] for r in state["rows"]}
    served = post_json(server.url + ROUTE, {"gamma": 1.2, "cutoff": 970, "sampler": None})["rows"]
    assert rows == {(r["label"], str(r["steps"])): ",".join(map(str, r["taca_steps"])) for r in served}
    assert ("FLUX.1", "20") in rows and ("SD3.5", "20") in rows and ("Qwen-Image", "20") in rows, rows
    assert rows[("FLUX.1", "20")] == comfy_gamma_steps(970, 20)
    redraw(page)  # the node grows to fit the rows
    assert preview_state(page)["box"] >= page.evaluate(
        "() => document.querySelector('.taca-schedule-preview').scrollHeight")
    preview_shot(page, "TACAModelPatch", shots / "schedule_preview_typical.png")


def test_schedule_preview_says_when_the_server_cannot_answer(page):
    """The steps come from the pack's route: with the route unreachable, or refusing, the node says so; with
    it back, the steps return on the next edit."""
    load_workflow(page, "taca_flux1_dev")
    zoom_on(page, "TACAModelPatch")
    assert preview_state(page)["tacaSteps"] == "1,2"
    requests = []
    page.on("request", lambda r: requests.append(r.url) if ROUTE in r.url else None)
    page.route(f"**{ROUTE}", lambda route: route.abort())
    try:
        set_widget(page, "KSampler", "steps", 30)
        state = preview_state(page)
    finally:
        page.unroute(f"**{ROUTE}")
    assert requests, "the preview did not ask the route"
    assert state["mode"] == "error" and "the ComfyUI server cannot be reached" in state["error"], state
    set_widget(page, "KSampler", "scheduler", "not_a_scheduler")  # the real route refuses it
    state = preview_state(page)
    assert state["mode"] == "error" and "scheduler not_a_scheduler is not one of this ComfyUI's" in state["error"]
    set_widget(page, "KSampler", "scheduler", "simple")
    state = preview_state(page)
    assert state["mode"] == "sampler" and state["tacaSteps"] == comfy_gamma_steps(970, 30) == "1,2,3"


def test_schedule_preview_follows_a_custom_sampler(page):
    """SamplerCustomAdvanced <- guider <- patch, with BasicScheduler's steps, scheduler and denoise."""
    ok = build_graph(page, {
        "unet": ("UNETLoader", {"unet_name": "flux1-dev.safetensors"}),
        "patch": ("TACAModelPatch", {"gamma": 1.2, "timestep_cutoff": 970}),
        "guider": ("BasicGuider", {}),
        "sched": ("BasicScheduler", {"scheduler": "simple", "steps": 30, "denoise": 1.0}),
        "sampler": ("SamplerCustomAdvanced", {}),
    }, [("unet", 0, "patch", "model"), ("patch", 0, "guider", "model"), ("patch", 0, "sched", "model"),
        ("guider", 0, "sampler", "guider"), ("sched", 0, "sampler", "sigmas")])
    assert ok
    zoom_on(page, "TACAModelPatch")
    state = preview_state(page)
    assert state["mode"] == "sampler" and "SamplerCustomAdvanced" in state["note"]
    assert state["tacaSteps"] == comfy_gamma_steps(970, 30) == "1,2,3"
    set_widget(page, "BasicScheduler", "denoise", 0.9)
    set_widget(page, "BasicScheduler", "steps", 12)
    assert preview_state(page)["tacaSteps"] == comfy_gamma_steps(970, 12, denoise=0.9)


def test_schedule_preview_follows_ksampler_advanced_start_and_end(page):
    assert build_graph(page, {
        "unet": ("UNETLoader", {"unet_name": "flux1-dev.safetensors"}),
        "patch": ("TACAModelPatch", {"gamma": 1.2, "timestep_cutoff": 900}),
        "ks": ("KSamplerAdvanced", {"steps": 20, "scheduler": "simple", "start_at_step": 2, "end_at_step": 10}),
    }, [("unet", 0, "patch", "model"), ("patch", 0, "ks", "model")])
    zoom_on(page, "TACAModelPatch")
    state = preview_state(page)
    assert "runs steps 3–10" in state["steps"], state["steps"]
    full = [int(k) for k in comfy_gamma_steps(900, 20).split(",")]
    assert state["tacaSteps"] == ",".join(str(k) for k in full if 3 <= k <= 10) and full[0] == 1
    set_widget(page, "KSamplerAdvanced", "start_at_step", 0)
    assert preview_state(page)["tacaSteps"] == comfy_gamma_steps(900, 20)


def test_schedule_preview_reads_steps_through_switches_and_primitives(page):
    """ComfyUI's own templates (Qwen-Image, Krea 2, ...) feed KSampler's steps from primitives via a switch,
    and set the shift with ModelSamplingAuraFlow after the loader."""
    ok = build_graph(page, {
        "unet": ("UNETLoader", {"unet_name": "qwen_image_fp8_e4m3fn.safetensors"}),
        "shift": ("ModelSamplingAuraFlow", {"shift": 3.1}),
        "patch": ("TACAModelPatch", {"gamma": 1.2, "timestep_cutoff": 970}),
        "few": ("PrimitiveInt", {"value": 8}),
        "many": ("PrimitiveInt", {"value": 20}),
        "flag": ("PrimitiveBoolean", {"value": False}),
        "switch": ("ComfySwitchNode", {}),
        "ks": ("KSampler", {"steps": 30, "scheduler": "simple", "denoise": 1.0}),
    }, [("unet", 0, "shift", "model"), ("shift", 0, "patch", "model"), ("patch", 0, "ks", "model"),
        ("many", 0, "switch", "on_false"), ("few", 0, "switch", "on_true"), ("flag", 0, "switch", "switch"),
        ("switch", 0, "ks", "steps")])
    if not ok:
        pytest.skip("ComfySwitchNode / PrimitiveInt are not in this ComfyUI")
    zoom_on(page, "TACAModelPatch")
    state = preview_state(page)
    assert state["steps"].startswith("your sampler: ") and " of 20 " in state["steps"], state["steps"]
    assert ("Qwen-Image (file qwen_image_fp8_e4m3fn.safetensors), ModelSamplingAuraFlow: ModelSamplingDiscreteFlow "
            "shift 3.1") in state["note"], state["note"]
    assert state["tacaSteps"] == comfy_gamma_steps(970, 20, shift=3.1)
    set_widget(page, "PrimitiveBoolean", "value", True)
    redraw(page)
    state = preview_state(page)
    assert " of 8 " in state["steps"] and state["tacaSteps"] == comfy_gamma_steps(970, 8, shift=3.1)


def test_schedule_preview_follows_flux2_scheduler(page):
    """FLUX.2's schedule: Flux2Scheduler's mu from the resolution and the step count."""
    ok = build_graph(page, {
        "unet": ("UNETLoader", {"unet_name": "flux2_dev_fp8mixed.safetensors"}),
        "patch": ("TACAModelPatch", {"gamma": 1.2, "timestep_cutoff": 970}),
        "guider": ("CFGGuider", {}),
        "sched": ("Flux2Scheduler", {"steps": 20, "width": 1024, "height": 1024}),
        "sampler": ("SamplerCustomAdvanced", {}),
    }, [("unet", 0, "patch", "model"), ("patch", 0, "guider", "model"), ("guider", 0, "sampler", "guider"),
        ("sched", 0, "sampler", "sigmas")])
    if not ok:
        pytest.skip("Flux2Scheduler is not in this ComfyUI (it came after 0.3.64)")
    zoom_on(page, "TACAModelPatch")
    state = preview_state(page)
    assert "FLUX.2 (file flux2_dev_fp8mixed.safetensors)" in state["note"], state
    assert state["tacaSteps"] == comfy_gamma_steps(970, 20, family="Flux2", flux2_size=(1024, 1024)), state
    set_widget(page, "Flux2Scheduler", "steps", 4)
    set_widget(page, "Flux2Scheduler", "width", 512)
    assert preview_state(page)["tacaSteps"] == comfy_gamma_steps(970, 4, family="Flux2", flux2_size=(512, 1024))


def test_lora_preview_follows_the_linked_patch(page, shots):
    load_workflow(page, "taca_flux1_dev_lora")
    zoom_on(page, "TACALoraLoader")
    state = preview_state(page, "TACALoraLoader")
    assert state and state["cutoff"] == "970" and "LoRA active with TACA" in state["caption"]
    assert state["mode"] == "sampler" and state["tacaSteps"] == comfy_gamma_steps(970, 20)
    set_widget(page, "TACAModelPatch", "timestep_cutoff", 850)
    redraw(page)
    state = preview_state(page, "TACALoraLoader")
    assert state["cutoff"] == "850" and state["tacaSteps"] == comfy_gamma_steps(850, 20)
    preview_shot(page, "TACALoraLoader", shots / "schedule_preview_lora.png")
    set_widget(page, "TACAModelPatch", "gamma", 1.0)
    redraw(page)
    state = preview_state(page, "TACALoraLoader")
    assert "never active" in state["caption"] and state["tacaSteps"] == ""
    page.evaluate("""() => {  // unlink the patch: the LoRA falls back to the paper's window
        const lora = window.app.graph._nodes.find(n => n.type === 'TACALoraLoader');
        lora.disconnectOutput(0);
        window.app.canvas.draw(true, true);
    }""")
    page.wait_for_timeout(300)
    state = preview_state(page, "TACALoraLoader")
    assert state["cutoff"] == "970" and "no TACA Model Patch" in state["caption"] and state["mode"] == "typical"
