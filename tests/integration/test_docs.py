"""The docs that come from one source agree with it: help pages' inputs/outputs with the node schemas,
the README's family tables with the family table (tools/build_docs.py writes both)."""
import importlib.util

from comfy_env import import_comfy

import_comfy()
from pack import ROOT, load_pack  # noqa: E402

_spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
build_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_docs)


def test_generated_docs_are_up_to_date():
    stale = [str(p.relative_to(ROOT)) for p, text in build_docs.generated().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"run tools/build_docs.py: {stale}"


def test_every_node_has_a_help_page_with_its_inputs():
    import asyncio
    nodes = asyncio.run(importlib.import_module(load_pack().__name__ + ".nodes").TACAExtension().get_node_list())
    for node in nodes:
        schema = node.define_schema()
        page = (ROOT / "web" / "docs" / f"{schema.node_id}.md").read_text()
        for inp in schema.inputs:
            assert f"- **{inp.id}**" in page and (inp.tooltip or "") in page, (schema.node_id, inp.id)


def test_readme_lists_every_family_of_the_table():
    families = importlib.import_module(load_pack().__name__ + ".taca_comfy.families").FAMILIES
    readme = (ROOT / "README.md").read_text()
    for f in families:
        assert f"| {f.name} | " in readme, f.name
