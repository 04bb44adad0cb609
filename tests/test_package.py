"The built wheel carries the templates and the papermill notebook, and an installed copy finds them."
import json, subprocess, sys, zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path_factory.mktemp("cwd"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("voxtral_deploy-*.whl")
    return whl


def test_wheel_carries_templates_notebook_and_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "voxtral_deploy/templates/model_card.md" in names
    for f in ("app.py", "requirements.txt", "README.md"):
        assert f"voxtral_deploy/templates/spaces/demo_voxtral/{f}" in names
    assert "voxtral_deploy/notebooks/deploy.ipynb" in names
    # the trained tiny model the quickstart and `make demo` use by default ships in the wheel
    assert {"voxtral_deploy/assets/tiny-voxtral-speech/model/model.safetensors",
            "voxtral_deploy/assets/tiny-voxtral-speech/smoke.json"} <= names
    assert not any("__pycache__" in n for n in names)
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "voxtral-deploy = voxtral_deploy.cli:main" in zipfile.ZipFile(wheel).read(ep).decode()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: huggingface_hub<3,>=2.4" in meta and 'extra == "quant"' in meta


def test_installed_wheel_locates_its_own_templates(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import json, voxtral_deploy, voxtral_deploy.card as c, voxtral_deploy.pipeline as p\n"
            "print(json.dumps([voxtral_deploy.__file__, str(c.templates_dir()), str(p.notebook_path())]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    mod, templates, nb = map(Path, json.loads(r.stdout))
    assert mod.is_relative_to(target) and templates.is_relative_to(target) and nb.is_relative_to(target)
    assert (templates / "model_card.md").is_file() and (templates / "spaces" / "demo_voxtral" / "app.py").is_file()
    assert json.loads(nb.read_text())["cells"]


def test_editable_checkout_locates_the_top_level_templates():
    from voxtral_deploy.card import templates_dir
    assert templates_dir().resolve() == (ROOT / "templates").resolve()
