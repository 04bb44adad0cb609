"""The docs site and README.md come from the notebooks: README.md never drifts from nbs/index.ipynb, the
notebooks are shown the way nbdev shows them (hidden cells gone, exported code through show_doc), and the
built site has a page for every notebook that names each module's public symbols."""
import ast, importlib.util, re, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbdocs", ROOT / "docs" / "nbdocs.py")
nbdocs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbdocs)


def _nb(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                    "display_name": "python3"}})


def _md_output(text: str):
    return new_output("execute_result", data={"text/markdown": text, "text/plain": "<md>"}, execution_count=1)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "docs" / "nbdocs.py"), *args], capture_output=True, text=True)


# --- README.md ---

def test_readme_is_generated_from_index():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == nbdocs.render_readme(), \
        "README.md drifted from nbs/index.ipynb (its source): edit the notebook, then run `make readme`"


def test_readme_check_fails_on_drift(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(nbdocs.render_readme(), encoding="utf-8")
    ok = _run("readme", "--check", "--readme", str(readme))
    assert ok.returncode == 0, ok.stderr
    readme.write_text(readme.read_text() + "\nedited by hand\n", encoding="utf-8")
    drifted = _run("readme", "--check", "--readme", str(readme))
    assert drifted.returncode == 1 and "make readme" in drifted.stderr


def test_readme_shows_index_without_directives(tmp_path):
    index = tmp_path / "index.ipynb"
    nbformat.write(_nb(new_markdown_cell("# tool\n\n> does things"),
                       new_code_cell("#| hide\nsecret_setup()"),
                       new_code_cell("1 + 1", outputs=[new_output("execute_result", data={"text/plain": "2"},
                                                                  execution_count=1)])), index)
    text = nbdocs.render_readme(index)
    assert text.startswith("# tool\n\n> does things\n")
    assert "secret_setup" not in text and "#|" not in text
    assert "```python\n1 + 1\n```" in text and "    2\n" in text and "\n\n\n" not in text


# --- how a notebook is shown ---

def test_directives():
    assert nbdocs.directives("#| export localhub.storage\n#| echo: false\n#|hide\n\nx = 1") == \
        ({"export": "localhub.storage", "echo": "false", "hide": ""}, "x = 1")
    assert nbdocs.directives("x = 1  #| not a directive") == ({}, "x = 1  #| not a directive")


def test_cells_are_shown_the_way_nbdev_shows_them():
    link = '[source](https://example.invalid/core.py#L3){target="_blank" style="float:right"}'
    cells = {
        "hidden": new_code_cell("#| hide\nfrom fastcore.test import test_eq"),
        "default_exp": new_code_cell("#| default_exp core"),
        "imports": new_code_cell("#| export\nimport os"),
        "function": new_code_cell("#| export\ndef f(x: int): return x"),
        "constant": new_code_cell("#| export\nLIMIT = 3\n_CACHE = {}\n__all__ = ['f']\nN: int = 2\n\ndef h(): return LIMIT"),
        "show_doc": new_code_cell("show_doc(f)", outputs=[_md_output(f"---\n\n{link}\n\n### f")]),
        "unrun show_doc": new_code_cell("show_doc(g)"),
        "echo false": new_code_cell("#| echo: false\nprint(1)", outputs=[new_output("stream", text="1\n")]),
        "output false": new_code_cell("#| output: false\nx", outputs=[new_output("stream", text="noise\n")]),
        "slow": new_code_cell("#| slow\nrun()", metadata={"tags": ["parameters"]}),
        "prose": new_markdown_cell("Why `f` exists: see [storage](10_storage.ipynb#blobs), [hub](https://hf.co/x.ipynb)."),
    }
    shown = {k: nbdocs.doc_cell(c) for k, c in cells.items()}
    assert [k for k, c in shown.items() if c is None] == ["hidden", "default_exp", "imports", "function"]
    assert shown["constant"].source == "LIMIT = 3\nN: int = 2" and shown["constant"].metadata["tags"] == []
    sd = shown["show_doc"]
    assert sd.source == "" and sd.metadata["tags"] == [nbdocs.HIDE_INPUT]
    assert '<a href="https://example.invalid/core.py#L3" target="_blank" style="float:right">source</a>' \
        in sd.outputs[0]["data"]["text/markdown"]
    assert shown["unrun show_doc"].source == "show_doc(g)"
    assert shown["echo false"].source == "" and shown["echo false"].outputs[0]["text"] == "1\n"
    assert shown["output false"].source == "x" and shown["output false"].outputs == []
    assert shown["slow"].source == "run()" and shown["slow"].metadata["tags"] == []
    assert shown["prose"].source == "Why `f` exists: see [storage](10_storage.html#blobs), [hub](https://hf.co/x.ipynb)."
    readme_link = nbdocs.doc_cell(cells["prose"], link=lambda p: f"nbs/{p}.ipynb").source
    assert "[storage](nbs/10_storage.ipynb#blobs)" in readme_link
    assert cells["function"].source.startswith("#| export"), "the source notebook is left as it was"


def test_notebooks_skip_private_and_checkpoints(tmp_path):
    for rel in ["index.ipynb", "00_core.ipynb", "_scratch.ipynb", ".ipynb_checkpoints/00_core-checkpoint.ipynb",
                "api/10_sub.ipynb"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_nb(), tmp_path / rel)
    assert [p.relative_to(tmp_path).as_posix() for p in nbdocs.notebooks(tmp_path)] == \
        ["00_core.ipynb", "api/10_sub.ipynb", "index.ipynb"]


def test_nav_comes_from_the_notebooks_present():
    pages = [("00_core.ipynb", "core", "core"), ("10_localhub_storage.ipynb", "localhub.storage", "localhub.storage"),
             ("14_localhub_server.ipynb", "server", "localhub.server"), ("20_card.ipynb", "card", "card"),
             ("deploy.ipynb", "Deploy a fine-tuned Voxtral", None), ("index.ipynb", "voxtral-deploy", None)]
    assert nbdocs.nav(pages) == [
        {"Home": "index.ipynb"}, {"core": "00_core.ipynb"},
        {"localhub": [{"storage": "10_localhub_storage.ipynb"}, {"server": "14_localhub_server.ipynb"}]},
        {"card": "20_card.ipynb"}, {"Deploy a fine-tuned Voxtral": "deploy.ipynb"}]
    nb = _nb(new_markdown_cell("# localhub.\\_\\_main\\_\\_\n> blobs"), new_code_cell("#| default_exp localhub.__main__"))
    assert (nbdocs.page_title(nb, "x"), nbdocs.module_of(nb)) == ("localhub.__main__", "localhub.__main__")
    assert (nbdocs.page_title(_nb(), "fallback"), nbdocs.module_of(_nb())) == ("fallback", None)


# --- the built site ---

class _ArticleText(HTMLParser):
    "The text inside a page's <article> (the page body, without nav and search)."
    def __init__(self):
        super().__init__()
        self.depth, self.parts = 0, []
    def handle_starttag(self, tag, attrs): self.depth += tag == "article"
    def handle_endtag(self, tag): self.depth -= tag == "article"
    def handle_data(self, data):
        if self.depth > 0: self.parts.append(data)


def _page_text(page: Path) -> str:
    parser = _ArticleText()
    parser.feed(page.read_text(encoding="utf-8"))
    return "".join(parser.parts)


def _public_names(module: Path) -> list[str]:
    "The module's `__all__`, less what it imports from elsewhere (a package re-exports; the defining page documents)."
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", None) == "__all__" for t in n.targets)), [])
    imported = {a.asname or a.name for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    return [n for n in names if n not in imported]


def _module_file(module: str) -> Path:
    base = ROOT / "voxtral_deploy" / module.replace(".", "/")
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def _page(site: Path, nb: Path) -> Path:
    return (site / nb.relative_to(nbdocs.NBS)).with_suffix(".html")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list[Path]]:
    "The site built once from nbs/, and the notebooks it was built from."
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: run `make setup`")
    tmp, built = tmp_path_factory.mktemp("docs"), nbdocs.notebooks()
    return nbdocs.build_site(tmp / "build", tmp / "site"), built


@pytest.mark.slow
def test_site_has_a_page_per_notebook(site):
    site, built = site
    assert len(built) > 1 and nbdocs.NBS / nbdocs.HOME in built
    missing = [p.name for p in built if not _page(site, p).exists()]
    assert not missing, f"no page for {missing}"
    home = _page_text(site / "index.html")
    assert "Quick start" in home and "make demo" in home
    for page in site.rglob("*.html"):
        text = _page_text(page)
        assert not re.search(r"#\|\s*(export|hide|default_exp)", text), f"{page.name} shows nbdev directives"


@pytest.mark.slow
def test_module_pages_name_public_symbols(site):
    site, built = site
    unnamed = {}
    for nb_path in built:
        module = nbdocs.module_of(nbformat.read(nb_path, as_version=4))
        if module is None: continue
        source = _module_file(module)
        assert source.exists(), f"{nb_path.name} exports to {module}, but {source} is missing: run nbdev_export"
        text = _page_text(_page(site, nb_path))
        missing = [n for n in _public_names(source) if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
        if missing: unnamed[nb_path.name] = missing
    assert not unnamed, f"pages that do not name their module's public symbols (add show_doc or prose): {unnamed}"
