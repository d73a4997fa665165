"""Writes the generated parts of the docs from their one source, or checks that they are up to date.

    COMFYUI_PATH=/path/to/ComfyUI python tools/build_docs.py [--check]

- each node's help page (web/docs/<node id>.md): its "## Inputs" and "## Outputs" sections, from the
  node's schema (tooltips, defaults, ranges, options), so help page and tooltips say the same;
- the README's supported-models and refused tables: the family, models and class columns, from the family
  table (taca_comfy/families.py). The notes and releases columns are kept per family (new rows get empty
  ones to fill in).
--check (the test tier runs it) changes nothing and exits 1 naming the files that differ.
"""
import asyncio
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

README = ROOT / "README.md"
DOCS = ROOT / "web" / "docs"
SUPPORTED_HEAD = ("| family | models | matched class (`comfy.ldm.…`) | where the text is; notes | releases |\n"
                  "|---|---|---|---|---|\n")
REFUSED_HEAD = "| family | class | why |\n|---|---|---|\n"


def _value(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def input_line(inp) -> str:
    """One input of a node schema as a help-page bullet."""
    facts = []
    if getattr(inp, "default", None) not in (None, ""):
        facts.append(f"default **{_value(inp.default)}**")
    lo, hi = getattr(inp, "min", None), getattr(inp, "max", None)
    if lo is not None and hi is not None:
        facts.append(f"range {_value(lo)}–{_value(hi)}")
    options = getattr(inp, "options", None)
    # fixed choices only (they have a default); a file list (lora_name) depends on the install
    if options and getattr(inp, "default", None) is not None and all(isinstance(o, str) for o in options):
        facts.append("one of " + ", ".join(f"`{o}`" for o in options))
    if getattr(inp, "optional", False):
        facts.append("optional")
    head = f"- **{inp.id}**" + (f" ({'; '.join(facts)})" if facts else "")
    return f"{head}: {inp.tooltip or ''}".rstrip()


def inputs_section(schema) -> str:
    return "## Inputs\n\n" + "\n".join(input_line(i) for i in schema.inputs) + "\n"


def outputs_section(schema) -> str:
    names = [o.display_name or o.io_type for o in schema.outputs]
    return "## Outputs\n\n" + "\n".join(f"- **{n}**: {o.tooltip or ''}".rstrip()
                                         for n, o in zip(names, schema.outputs)) + "\n"


def _section(text: str, heading: str):
    return re.search(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)


def replace_section(text: str, heading: str, body: str, after: str = None) -> str:
    """text with the section `heading` (up to the next '## ') replaced by body.

    A missing section goes right after the section `after`, or at the end.
    """
    m = _section(text, heading)
    if m is None:
        a = _section(text, after) if after else None
        if a is None:
            return text.rstrip("\n") + "\n\n" + body
        return text[:a.end()].rstrip("\n") + "\n\n" + body + "\n" + text[a.end():]
    return text[:m.start()] + body + ("\n" if m.end() < len(text) else "") + text[m.end():]


def _cell(s: str) -> str:
    return s.replace("|", "\\|")


def _rows(table: str) -> dict:
    """{family name: [cells]} of a markdown table's body."""
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells:
            rows[cells[0]] = cells
    return rows


def _classes(family) -> str:
    return ", ".join(f"`{p.removeprefix('comfy.ldm.')}`" for p in family.classes)


def family_tables(readme: str, families) -> str:
    """readme with its two family tables' generated columns rewritten from the family table."""
    def table_at(head, text):
        start = text.index(head)
        end = start + len(head)
        while end < len(text) and text[end] == "|":
            end = text.index("\n", end) + 1
        return start, end

    s, e = table_at(SUPPORTED_HEAD, readme)
    old = _rows(readme[s:e])
    body = "".join(
        f"| {f.name} | {_cell(f.models)} | {_classes(f)} | "
        f"{' | '.join((old.get(f.name) or ['', '', '', '', ''])[3:5]) or ' | '} |\n"
        for f in families if not f.refused)
    readme = readme[:s] + SUPPORTED_HEAD + body + readme[e:]
    s, e = table_at(REFUSED_HEAD, readme)
    body = "".join(f"| {f.name} | {_classes(f)} | {_cell(f.refused)} |\n" for f in families if f.refused)
    return readme[:s] + REFUSED_HEAD + body + readme[e:]


def generated() -> dict:
    """{path: text it should have}."""
    from comfy_env import import_comfy
    import_comfy()
    from pack import load_pack
    pack = load_pack().__name__
    families = importlib.import_module(pack + ".taca_comfy.families").FAMILIES
    nodes = asyncio.run(importlib.import_module(pack + ".nodes").TACAExtension().get_node_list())
    out = {README: family_tables(README.read_text(), families)}
    for node in nodes:
        schema = node.define_schema()
        page = DOCS / f"{schema.node_id}.md"
        text = page.read_text() if page.exists() else f"# {schema.display_name}\n\n{schema.description}\n"
        text = replace_section(text, "## Inputs", inputs_section(schema))
        out[page] = replace_section(text, "## Outputs", outputs_section(schema), after="## Inputs")
    return out


def main():
    check = "--check" in sys.argv[1:]
    stale = [p for p, text in generated().items() if not p.exists() or p.read_text() != text]
    if check:
        if stale:
            sys.exit("out of date (run tools/build_docs.py): " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return
    for p, text in generated().items():
        p.write_text(text)
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in stale) or "nothing (up to date)")


if __name__ == "__main__":
    main()
