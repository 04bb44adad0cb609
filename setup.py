"""Packaging for voxtral-deploy: every piece of metadata comes from settings.ini (nbdev's single source)."""
import shlex, shutil
from configparser import ConfigParser
from pathlib import Path
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
cfg = ConfigParser(delimiters=["="])
cfg.read(ROOT / "settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

def _reqs(key): return shlex.split(cfg.get(key, ""))

# Files that live at the repository's top level but must ship inside the package.
SHIPPED = {"templates": "templates", "nbs/deploy.ipynb": "notebooks/deploy.ipynb",
           # the trained tiny Voxtral (~2 MB): the quickstart's and `make demo`'s default model, from a wheel too
           "tests/fixtures/tiny-voxtral-speech": "assets/tiny-voxtral-speech"}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "flagged", ".gradio")

class BuildPyWithTemplates(build_py):
    "Copy `templates/`, the papermill notebook and the trained tiny Voxtral into the built package."
    def run(self):
        super().run()
        pkg = Path(self.build_lib) / cfg["lib_path"]
        for src, dst in SHIPPED.items():
            src, dst = ROOT / src, pkg / dst
            if src.is_dir(): shutil.copytree(src, dst, dirs_exist_ok=True, ignore=_IGNORE)
            elif src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)

licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]
lic = licenses.get(cfg["license"].lower(), (cfg["license"], None))
min_python = cfg["min_python"]

setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic[0],
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    classifiers=[
        f"Development Status :: {statuses[int(cfg['status'])]}",
        f"Intended Audience :: {cfg['audience'].title()}",
        f"Natural Language :: {cfg['language'].title()}",
        "Programming Language :: Python :: 3",
    ] + ([f"License :: {lic[1]}"] if lic[1] else []),
    python_requires=f">={min_python}",
    packages=find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]),
    include_package_data=True,
    install_requires=_reqs("requirements"),
    extras_require={k[: -len("_requirements")]: _reqs(k) for k in cfg if k.endswith("_requirements")},
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    cmdclass={"build_py": BuildPyWithTemplates},
    zip_safe=False,
)
