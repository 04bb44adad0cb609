"Inspection of real model folders: the tiny Voxtral, Trainer-shaped outputs, and every bad input of the foundation issue."
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

from voxtral_deploy.artifacts import inspect_model, load_training_config, load_training_results
from voxtral_deploy.core import InvalidInputError, InvalidModelError


def _snapshot(d: Path) -> dict:
    "Every file under d with its size and mtime: to prove inspection changed nothing."
    return {p.relative_to(d).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(d.rglob("*"))}


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    d = tmp_path / "run"
    shutil.copytree(tiny_model_dir, d)
    return d


def test_tiny_voxtral_inspects_as_full_model(tiny_model_dir):
    a = inspect_model(tiny_model_dir)
    assert (a.kind, a.architecture, a.model_type) == ("full", "VoxtralForConditionalGeneration", "voxtral")
    assert a.dtype == "F32" and a.num_parameters == sum(a.dtypes.values())
    assert set(a.files) >= {"config.json", "model.safetensors", "tekken.json"}
    assert a.weights_size == (tiny_model_dir / "model.safetensors").stat().st_size
    assert a.excluded == {}
    json.dumps(a.to_dict())  # JSON-ready


def test_trainer_output_folder_leaves_out_training_state(trained_run, tmp_path):
    "A real Trainer output folder (checkpoint-N/, runs/, training_args.bin), plus what people leave around (.git, notes, a README)."
    out = tmp_path / "run"; shutil.copytree(trained_run.output_dir, out)
    (out / "notes.txt").write_text("x"); (out / "README.md").write_text("# mine\n")
    (out / ".git").mkdir(); (out / ".git" / "HEAD").write_text("ref")
    before = _snapshot(out)
    a = inspect_model(out)
    assert _snapshot(out) == before
    assert {a.excluded[f"{c.name}/"] for c in trained_run.checkpoints} == {"intermediate Trainer checkpoint"}
    assert a.excluded["training_args.bin"].startswith("Trainer arguments") and a.excluded[".git/"] == "version-control data"
    assert a.excluded["README.md"] == "merged into the generated model card"
    tb = [f for f in a.files if f.startswith("runs/")]  # TensorBoard's event file is published, from where it is
    assert len(tb) == 1 and "events.out.tfevents." in tb[0] and a.path_of(tb[0]) == out / tb[0]
    assert not any(f.startswith(("checkpoint", ".git")) or f.endswith((".pt", ".pth", ".bin")) for f in a.files)
    assert inspect_model(out, tensorboard=False).excluded["runs/"] == "TensorBoard logs (left out on request)"
    ck = inspect_model(out, checkpoint="2")  # a checkpoint: its training state is left out, the processor comes from the top
    assert ck.checkpoint == "checkpoint-2" and ck.output_dir == out.resolve()
    assert ck.excluded["optimizer.pt"].startswith("optimizer state") and ck.excluded["trainer_state.json"].startswith("training log")
    assert ck.excluded["rng_state.pth"].startswith("random-number state") and ck.excluded["scheduler.pt"].startswith("scheduler state")
    assert ck.path_of("tekken.json") == out.resolve() / "tekken.json" and ck.path_of("model.safetensors") == out.resolve() / "checkpoint-2" / "model.safetensors"


def test_results_of_a_trainer_output_folder(trained_run):
    r = load_training_results(trained_run.output_dir)  # no trainer_state.json at the top: the latest checkpoint's
    assert r.sources == [f"{trained_run.checkpoints[-1].name}/trainer_state.json"] and r.paths == [str(trained_run.trainer_state.resolve())]
    assert r.steps == 6 and r.wer_percent and r.wer is not None and [p["step"] for p in r.loss_curve if "eval_loss" in p] == [2, 4, 6]
    assert r.unrecognised == []  # everything a Trainer writes is understood


def test_sharded_checkpoint_and_index(tmp_path, tiny_model_dir):
    from transformers import VoxtralForConditionalGeneration
    m = VoxtralForConditionalGeneration.from_pretrained(tiny_model_dir)
    d = tmp_path / "sharded"
    m.save_pretrained(d, max_shard_size="100KB")
    for f in tiny_model_dir.iterdir():
        if "safetensors" not in f.name and not (d / f.name).exists(): shutil.copy(f, d / f.name)
    a = inspect_model(d)
    assert len(a.weight_files) > 1 and "model.safetensors.index.json" in a.files
    assert a.num_parameters == inspect_model(tiny_model_dir).num_parameters
    # the index names a tensor that its shard does not hold -> error
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    name, shard = next(iter(idx["weight_map"].items()))
    idx["weight_map"]["not.a.tensor"] = shard
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    with pytest.raises(InvalidModelError, match="does not hold it"):
        inspect_model(d)


BAD_FOLDERS = {
    "empty folder": (lambda d: [f.unlink() for f in d.iterdir()], "is empty"),
    "no config.json": (lambda d: (d / "config.json").unlink(), "has no config.json"),
    "llama config": (lambda d: (d / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})), "'llama' model, not Voxtral"),
    "0-byte safetensors": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors is empty"),
    "truncated safetensors": (lambda d: os.truncate(d / "model.safetensors", (d / "model.safetensors").stat().st_size - 100), "model.safetensors is truncated"),
    "index names a missing shard": (lambda d: (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model-00002-of-00002.safetensors"}})), "names the shard model-00002-of-00002.safetensors"),
    "symlink outside the folder": (lambda d: (d / "extra.safetensors").symlink_to("/etc/hostname"), "outside the model folder"),
    "missing tekken": (lambda d: (d / "tekken.json").unlink(), "No tokenizer file"),
    "unreadable config": (lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()), "config.json"),
    "config that does not parse": (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    "pickle weights only": (lambda d: ((d / "model.safetensors").unlink(), (d / "pytorch_model.bin").write_bytes(b"x")), "found pytorch_model.bin"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folders_raise_naming_the_file_and_change_nothing(case, model_copy):
    mutate, message = BAD_FOLDERS[case]
    mutate(model_copy)
    before = _snapshot(model_copy)
    with pytest.raises(InvalidModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inspect_model(model_copy)
    assert _snapshot(model_copy) == before


def test_training_config_and_results_from_real_fixtures(training_fixtures):
    cfg_json = load_training_config(training_fixtures["training_config"])
    cfg_yaml = load_training_config(training_fixtures["training_config_yaml"])
    assert cfg_json == cfg_yaml and cfg_json
    r = load_training_results(training_fixtures["trainer_state"])
    assert r.loss_curve and all("step" in p for p in r.loss_curve)
    assert r.best_wer is not None and r.best_wer <= r.wer
    merged = load_training_results(training_fixtures["dir"])
    assert merged.wer is not None and set(merged.sources) >= {"trainer_state.json", "all_results.json"}


@pytest.mark.parametrize("text,suffix,message", [
    ("a: [1, 2", ".yaml", "not valid YAML"), ('{"a": 1,}', ".json", "not valid JSON"),
    ('{"eval_wer": Infinity}', ".json", "is inf"), ('{"eval_cer": -1}', ".json", "is negative"),
])
def test_bad_results_and_configs(tmp_path, text, suffix, message):
    p = tmp_path / f"x{suffix}"; p.write_text(text)
    loader = load_training_config if "YAML" in message or "JSON" in message else load_training_results
    with pytest.raises(InvalidInputError, match=message):
        loader(p)


def test_cli_make_tiny_model_then_inspect_json(tmp_path):
    exe = Path(sys.executable).with_name("voxtral-deploy")
    r = subprocess.run([exe, "make-tiny-model", tmp_path / "m", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    r = subprocess.run([exe, "inspect", made["model_dir"], "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["kind"] == "full" and info["num_parameters"] == made["num_parameters"]
    r = subprocess.run([exe, "inspect", tmp_path / "nope"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error: The model folder") and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_import_and_help_stay_light():
    code = "import sys, voxtral_deploy, voxtral_deploy.cli as c\n" \
           "heavy = [m for m in ('torch', 'transformers', 'gradio') if m in sys.modules]\nprint(heavy)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
