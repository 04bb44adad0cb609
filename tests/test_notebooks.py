"""The notebooks read as documentation: small export cells, `show_doc` for every public symbol, a kernelspec,
saved example outputs, and modules small enough to read (the redesign's measurable goals)."""
import ast, json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
MAX_CELL, MAX_AVG, MAX_MODULE = 80, 25, 600


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def _src(c: dict) -> str:
    return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


def _export_cells(nb: Path) -> list[str]:
    return [_src(c) for c in _cells(nb) if c["cell_type"] == "code" and _src(c).lstrip().startswith(("#| export", "#|export"))]


def _module_of(nb: Path) -> Path | None:
    for c in _cells(nb):
        for line in _src(c).splitlines():
            if line.startswith("#| default_exp"):
                return ROOT / "voxtral_deploy" / (line.split()[-1].replace(".", "/") + ".py")
    return None


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.stem)
def test_export_cells_are_small(nb):
    sizes = [len(s.splitlines()) for s in _export_cells(nb)]
    assert sizes, f"{nb.name} exports nothing"
    assert max(sizes) <= MAX_CELL, f"{nb.name}: longest export cell has {max(sizes)} lines (limit {MAX_CELL})"
    assert sum(sizes) / len(sizes) <= MAX_AVG, f"{nb.name}: export cells average {sum(sizes)/len(sizes):.1f} lines (limit {MAX_AVG})"


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.stem)
def test_public_symbols_have_show_doc(nb):
    mod = _module_of(nb)
    assert mod and mod.exists(), f"{nb.name} names no exported module"
    tree = ast.parse(mod.read_text())
    public = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}
    allnames = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                     and any(getattr(t, "id", None) == "__all__" for t in n.targets)), [])
    public &= set(allnames)
    text = "\n".join(_src(c) for c in _cells(nb))
    missing = sorted(n for n in public if f"show_doc({n}" not in text)
    assert not missing, f"{nb.name}: no show_doc for {missing}"


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.stem)
def test_kernelspec_and_saved_outputs(nb):
    meta = json.loads(nb.read_text()).get("metadata", {})
    assert "kernelspec" in meta, f"{nb.name} carries no kernelspec"
    outs = [c for c in _cells(nb) if c["cell_type"] == "code" and c.get("outputs")]
    assert outs, f"{nb.name}: no example keeps its output"
    bars = [i for i, c in enumerate(_cells(nb)) if c["cell_type"] == "code" and "it/s]" in json.dumps(c.get("outputs", []))]
    assert not bars, f"{nb.name}: cells {bars} saved progress bars; turn them off in the notebook (disable_progress_bars)"


def test_modules_are_readable():
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / "voxtral_deploy").rglob("*.py")
           if p.name != "_modidx.py" and (n := len(p.read_text().splitlines())) > MAX_MODULE}
    assert not big, f"modules longer than {MAX_MODULE} lines: {big}"
