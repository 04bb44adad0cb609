"""Build the docs site and README.md from the notebooks in nbs/.

nbdev's own `nbdev_docs` and `nbdev_readme` need quarto, which cannot be installed on these machines, so
this script does the part of their work the site needs: it copies each notebook to a build folder the way
nbdev's processors would show it (hidden cells dropped, directives stripped, exported code replaced by its
`show_doc`), writes a mkdocs config whose nav lists the notebooks present, and runs mkdocs (material theme,
mkdocs-jupyter). README.md is nbs/index.ipynb through nbconvert's markdown exporter.

    python docs/nbdocs.py site                # build the site into _docs/ (what `make docs` runs)
    python docs/nbdocs.py readme              # write README.md from nbs/index.ipynb (`make readme`)
    python docs/nbdocs.py readme --check      # exit 1 when README.md has drifted from nbs/index.ipynb
"""
from __future__ import annotations

import argparse, ast, copy, json, os, re, shutil, subprocess, sys
from pathlib import Path
from typing import Callable

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NBS, README, BUILD, SITE = ROOT / "nbs", ROOT / "README.md", ROOT / "_proc", ROOT / "_docs"
HOME = "index.ipynb"
HIDE_INPUT = "remove_input"  # the tag for cells whose outputs the docs show without their source

# Directives whose cell nbdev leaves out of the docs altogether, and those that export code (shown through
# show_doc; only their public constants are shown as code).
_DROP = {"hide", "default_exp"}
_EXPORT = {"export", "exporti"}
_DIRECTIVE = re.compile(r"([\w-]+):?\s*(.*)")  # `export`, `export localhub.storage`, `echo: false`
# show_doc's markdown carries a pandoc attribute block that plain markdown renderers print as text.
_PANDOC_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}")
# A markdown link to another notebook, `[storage](10_localhub_storage.ipynb#blobs)`: the page is `.html`.
_NOTEBOOK_LINK = re.compile(r"\]\((?![a-z][\w+.-]*:)([^)#\s]+)\.ipynb(#[^)\s]*)?\)")


def directives(source: str,  # a code cell's source
               ) -> tuple[dict[str, str], str]:
    "The cell's leading `#|` directives as {name: value}, and the source without them."
    lines, found = source.splitlines(), {}
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#|")):
        text = lines[i].lstrip()[2:].strip()
        if m := _DIRECTIVE.match(text): found[m[1]] = m[2].strip()
        i += 1
    return found, "\n".join(lines[i:])


def _public_assignments(code: str,  # an exported cell's source, directives removed
                        ) -> str:
    "What the docs show of an exported cell: its public top-level assignments (constants, aliases); show_doc shows the rest."
    try: tree = ast.parse(code)
    except SyntaxError: return ""
    def public(node: ast.stmt) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        return bool(names) and not any(n.startswith("_") for n in names)
    keep = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)) and public(n)]
    return "\n".join(ast.get_source_segment(code, n) for n in keep)


def _is_show_doc(code: str,  # a cell's source, directives removed
                 ) -> bool:
    "Whether a cell only calls `show_doc`."
    lines = [l for l in code.splitlines() if l.strip()]
    return bool(lines) and all(l.lstrip().startswith("show_doc(") for l in lines)


def _clean_markdown(text: str,  # a `text/markdown` output, e.g. show_doc's
                    ) -> str:
    "`[source](url){target=... style=...}` (pandoc) as an HTML link a plain markdown renderer shows."
    return _PANDOC_LINK.sub(lambda m: f'<a href="{m[2]}" {m[3]}>{m[1]}</a>', text)


def _clean_outputs(outputs: list,  # a code cell's saved outputs
                   ) -> list:
    "The outputs with show_doc's markdown made renderable."
    for out in outputs:
        data = out.get("data", {})
        if "text/markdown" in data:
            md = data["text/markdown"]
            data["text/markdown"] = _clean_markdown("".join(md) if isinstance(md, list) else md)
    return outputs


def as_page(path: str,  # a link's target: a notebook's path without `.ipynb`, e.g. `10_localhub_storage`
            ) -> str:
    "Where a link to a notebook points on the site: its page."
    return path + ".html"


def doc_cell(cell: nbformat.NotebookNode,  # a notebook cell
             link: Callable[[str], str] = as_page,  # where a markdown link to a notebook should point
             ) -> nbformat.NotebookNode | None:
    "The cell as the docs show it, or None when nbdev would leave it out."
    if cell.cell_type == "markdown":
        cell = copy.deepcopy(cell)
        cell.source = _NOTEBOOK_LINK.sub(lambda m: f"]({link(m[1])}{m[2] or ''})", cell.source)
        return cell
    if cell.cell_type != "code": return cell
    found, code = directives(cell.source)
    if _DROP & found.keys(): return None
    cell = copy.deepcopy(cell)
    if _EXPORT & found.keys(): code = _public_assignments(code)
    cell.source, cell.outputs = code.strip("\n"), _clean_outputs(cell.get("outputs", []))
    hide_source = not cell.source or found.get("echo") == "false" or (_is_show_doc(code) and bool(cell.outputs))
    if found.get("output") == "false": cell.outputs = []
    if hide_source and not cell.outputs: return None
    # nbconvert's TagRemovePreprocessor drops the input box of cells tagged so (see mkdocs.yml, render_readme).
    cell.metadata["tags"] = [HIDE_INPUT] if hide_source else []
    if hide_source: cell.source = ""
    return cell


def doc_notebook(nb: nbformat.NotebookNode,  # a notebook read with nbformat
                 link: Callable[[str], str] = as_page,  # where a markdown link to a notebook should point
                 ) -> nbformat.NotebookNode:
    "A copy of the notebook holding only what the docs show."
    out = copy.deepcopy(nb)
    out.cells = [c for c in (doc_cell(c, link) for c in nb.cells) if c is not None]
    out.metadata.pop("widgets", None)
    out.metadata.setdefault("language_info", {"name": "python"})  # nbdev_clean drops it; exporters fence code by it
    return out


def notebooks(nbs: Path = NBS,  # the notebooks folder
              ) -> list[Path]:
    "The notebooks nbdev would process, in order (skipping checkpoints and names starting with `_` or `.`)."
    return sorted(p for p in nbs.rglob("*.ipynb")
                  if not any(part.startswith(("_", ".")) for part in p.relative_to(nbs).parts))


def page_title(nb: nbformat.NotebookNode,  # a notebook
               default: str,               # used when the notebook has no `# title` cell
               ) -> str:
    "The notebook's first markdown H1, which is what nbdev takes for the page title."
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "): return re.sub(r"\\([\\`*_{}\[\]()#+.!|-])", r"\1", line[2:].strip())  # `\_` -> `_`
    return default


def module_of(nb: nbformat.NotebookNode,  # a notebook
              ) -> str | None:
    "The module the notebook exports to (its `#| default_exp`), e.g. `localhub.storage`."
    for cell in nb.cells:
        if cell.cell_type == "code":
            found, _ = directives(cell.source)
            if "default_exp" in found: return found["default_exp"]
    return None


def nav(pages: list[tuple[str, str, str | None]],  # (page path, title, module) in order
        ) -> list:
    "The site's nav: the home page first, then one entry per notebook; a package's modules grouped under its name."
    entries, groups = [], {}
    for path, title, module in pages:
        if path == HOME: entries.insert(0, {"Home": path}); continue
        package = module.rpartition(".")[0] if module else ""
        if not package: entries.append({title: path}); continue
        if package not in groups:
            groups[package] = []
            entries.append({package: groups[package]})
        groups[package].append({title.removeprefix(package + "."): path})
    return entries


def prepare(nbs: Path = NBS,      # the notebooks folder
            build: Path = BUILD,  # where the processed notebooks and the mkdocs config go
            site: Path = SITE,    # where mkdocs writes the site
            ) -> Path:
    "Write the processed notebooks to `build/docs` and a mkdocs config with their nav; return the config's path."
    docs = build / "docs"
    if docs.exists(): shutil.rmtree(docs)
    pages = []
    for src in notebooks(nbs):
        nb = nbformat.read(src, as_version=4)
        rel = src.relative_to(nbs).as_posix()
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(doc_notebook(nb), docs / rel)
        pages.append((rel, page_title(nb, src.stem), module_of(nb)))
    config = {"INHERIT": str(ROOT / "mkdocs.yml"), "docs_dir": str(docs), "site_dir": str(site), "nav": nav(pages)}
    path = build / "mkdocs.yml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML, so the config needs no YAML writer
    return path


def build_site(build: Path = BUILD,  # the build folder (processed notebooks, mkdocs cache)
               site: Path = SITE,    # where the site goes
               nbs: Path = NBS,      # the notebooks folder
               ) -> Path:
    "Build the site from the notebooks and return its folder."
    config = prepare(nbs, build, site)
    # mkdocs-jupyter keeps its cache under the working directory: run mkdocs in the build folder.
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--clean", "-q", "-f", str(config)],
                          cwd=build, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if proc.returncode:
        raise RuntimeError(f"mkdocs could not build the site (exit {proc.returncode}); its output:\n{proc.stdout}{proc.stderr}\n"
                           "Install the docs extra (`make setup`) and check the notebook it names.")
    return site


def render_readme(index: Path = NBS / HOME,  # the README's source notebook
                  ) -> str:
    "README.md's text: the index notebook as the docs show it, through nbconvert's markdown exporter."
    from nbconvert import MarkdownExporter
    from traitlets.config import Config
    config = Config({"TagRemovePreprocessor": {"enabled": True, "remove_input_tags": [HIDE_INPUT]}})
    # README.md sits at the top of the repository, so a link to another notebook goes to nbs/.
    nb = doc_notebook(nbformat.read(index, as_version=4), link=lambda path: f"{NBS.name}/{path}.ipynb")
    body, _ = MarkdownExporter(config=config).from_notebook_node(nb)
    return re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"  # the exporter leaves runs of blank lines around outputs


def _shown(path: Path,  # a file
           ) -> str:
    "The path as a reader of the message knows it: relative to the repository when inside it."
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None,  # command-line arguments (default: sys.argv[1:])
         ) -> int:
    "The command line: `site` builds the docs site, `readme` writes or checks README.md."
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    site = sub.add_parser("site", help="build the docs site from nbs/")
    site.add_argument("--build-dir", type=Path, default=BUILD, help="processed notebooks and the mkdocs config")
    site.add_argument("--site-dir", type=Path, default=SITE, help="where the site goes")
    readme = sub.add_parser("readme", help="write README.md from nbs/index.ipynb")
    readme.add_argument("--check", action="store_true", help="only check that README.md matches; exit 1 if not")
    readme.add_argument("--index", type=Path, default=NBS / HOME, help="the source notebook")
    readme.add_argument("--readme", type=Path, default=README, help="the README to write or check")
    args = parser.parse_args(argv)
    if args.command == "site":
        out = build_site(args.build_dir.resolve(), args.site_dir.resolve())
        print(f"site built in {out} ({len(list(out.rglob('*.html')))} pages); open {out / 'index.html'}")
        return 0
    text = render_readme(args.index)
    if not args.check:
        args.readme.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(args.readme)} from {_shown(args.index)}")
        return 0
    if args.readme.exists() and args.readme.read_text(encoding="utf-8") == text:
        print(f"{_shown(args.readme)} matches {_shown(args.index)}")
        return 0
    print(f"error: {_shown(args.readme)} differs from {_shown(args.index)}, its source: edit the notebook, then run `make readme`",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
