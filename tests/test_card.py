"""End-to-end tests of the model card: parse-back, the hub's validate-yaml, literal user text,
conditional sections, bad inputs, and the how-to-use snippet run against a real tiny Voxtral."""
import json, math, os, re, subprocess, sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, RepoCard

from voxtral_deploy.artifacts import inspect_model, load_training_config, load_training_results
from voxtral_deploy.testing import make_fake_voxtral_folder
from voxtral_deploy.card import (MISSING, ModelCardGenerator, card_variables, render_card, templates_dir, validate_card,
                                 validate_card_on_hub)
from voxtral_deploy.core import InvalidInputError, ModelMetadata, TemplateError
from voxtral_deploy.artifacts import TrainingResults

REPO = "alice/voxtral-mini-fr"
ODD = 'Jane: Doe "quoted" \'single\' {{ 7*7 }} {% if x %}{% endif %} # not a heading\nline two — ünïcødé 🎙️ | pipe'


@pytest.fixture
def fake_dir(tmp_path) -> Path:
    return make_fake_voxtral_folder(tmp_path / "voxtral-fr")


@pytest.fixture
def full_card(fake_dir, training_fixtures) -> str:
    return render_card(fake_dir, training_config=training_fixtures["training_config"], results=training_fixtures["trainer_state"],
                       metadata={"name": "Voxtral Mini FR", "languages": ["fr"]}, repo_id=REPO)


def _last_eval(fx: dict) -> dict:
    "The last evaluation the real Trainer run logged in its trainer_state.json (what a card built from it reports)."
    state = json.loads(fx["trainer_state"].read_text())
    return [e for e in state["log_history"] if "eval_wer" in e][-1]


def _prose(text: str) -> str:
    "The card body without code blocks."
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _snippet(card: str) -> str:
    "The first python block of the 'How to use' section."
    section = card.split("## How to use", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


# -- round trip --------------------------------------------------------------------------------------
def test_round_trip_model_index(full_card, training_fixtures):
    card = ModelCard(full_card)
    last = _last_eval(training_fixtures)
    res = {e.metric_type: e for e in card.data.eval_results}
    assert set(res) == {"wer", "cer"}
    assert res["wer"].metric_value == round(last["eval_wer"], 4) and res["cer"].metric_value == round(last["eval_cer"], 4)
    assert res["wer"].task_type == "automatic-speech-recognition"
    assert res["wer"].dataset_type == "mozilla-foundation/common_voice_17_0" and res["wer"].dataset_config == "fr"
    data = RepoCard(full_card).data.to_dict()
    assert data["pipeline_tag"] == "automatic-speech-recognition"
    assert data["base_model"] == "mistralai/Voxtral-Mini-3B-2507" and data["base_model_relation"] == "finetune"
    assert data["language"] == ["fr"] and data["metrics"] == ["wer", "cer"] and data["library_name"] == "transformers"
    assert data["model-index"][0]["name"] == "Voxtral Mini FR"
    # what the Hub would re-serialize is the same card
    assert ModelCard(str(card)).data.eval_results == card.data.eval_results
    assert "are **percentages**" in full_card


def test_card_from_real_tiny_model(tiny_model_dir, training_fixtures):
    text = render_card(tiny_model_dir, results=training_fixtures["eval_results"], training_config=training_fixtures["training_config"],
                       repo_id=REPO)
    card = validate_card(text)
    assert card.data.eval_results[0].metric_value == round(json.loads(training_fixtures["eval_results"].read_text())["eval_wer"], 4)
    assert "Transformers" in text and "float32" in _snippet(text)  # the tiny model is stored in F32


def test_validate_yaml_on_local_hub(full_card, hub):
    validate_card(full_card, endpoint=hub.endpoint)                     # passes
    validate_card_on_hub(full_card, api=HfApi(endpoint=hub.endpoint))  # the same through an injected HfApi
    broken = full_card.replace("    - type: wer\n", "    - typo: wer\n", 1)
    with pytest.raises(InvalidInputError, match="rejected the card's metadata"):
        validate_card_on_hub(broken, endpoint=hub.endpoint)


# -- user text ---------------------------------------------------------------------------------------
def test_user_text_is_literal(fake_dir, training_fixtures, hub):
    meta = {"name": ODD, "description": ODD, "author": ODD, "tags": ["x: y", "{{ 7*7 }}"]}
    text = render_card(fake_dir, training_config=training_fixtures["training_config"], results=training_fixtures["trainer_state"],
                       metadata=meta, repo_id=REPO)
    card = ModelCard(text)
    assert card.data.model_name == ODD
    assert card.data.eval_results[0].metric_value == round(_last_eval(training_fixtures)["eval_wer"], 4)
    assert "{{ 7*7 }}" in card.data.tags and "x: y" in card.data.tags
    assert ODD in card.text                       # the summary, verbatim
    assert "{% if x %}{% endif %}" in card.text and card.text.count("{{ 7*7 }}") >= 2  # nothing was evaluated
    assert "Jane: Doe" in card.text.split("\n# ", 1)[1].splitlines()[0]  # heading kept on one line
    assert r"\| pipe" in card.text                # table cells escape pipes
    validate_card(text, endpoint=hub.endpoint)


# -- conditional sections --------------------------------------------------------------------------
def test_bare_card_has_no_none(fake_dir):
    text = render_card(fake_dir)
    prose = _prose(ModelCard(text).text)
    for bad in ("None", "N/A", "nan"):
        assert not re.search(rf"\b{bad}\b", prose), bad
    assert MISSING in prose and "no evaluation results" in prose
    for section in ("## Demo", "### Quantized variants", "### Adapter", "### 4-bit variant", "### Training curve", "### Hyperparameters"):
        assert section not in text
    assert ModelCard(text).data.eval_results is None
    assert "apply_transcription_request(audio=" in _snippet(text)  # no language known: automatic detection


def test_conditional_sections_present(fake_dir, training_fixtures):
    text = render_card(fake_dir, training_config=training_fixtures["training_config"], results=training_fixtures["trainer_state"],
                       repo_id=REPO, space_id="alice/voxtral-demo",
                       quantized_variants=[{"subfolder": "int4", "method": "bitsandbytes nf4", "size": 3 * 2**30}])
    assert "## Demo" in text and "https://huggingface.co/spaces/alice/voxtral-demo" in text
    assert "### Quantized variants" in text and "| `int4` | bitsandbytes nf4 | 3.0 GiB |" in text
    assert 'subfolder="int4"' in text and "### Training curve" in text and "### Hyperparameters" in text
    assert "| `learning_rate` | 0.001 |" in text and "output_dir" not in text  # the real run's TrainingArguments


def test_dataset_unknown_keeps_results_out_of_model_index(fake_dir):
    res = TrainingResults(wer=0.2, cer=0.1, best_wer=0.18, wer_percent=False, metrics={"eval_wer": 0.2})
    text = render_card(fake_dir, results=res, repo_id=REPO)
    assert ModelCard(text).data.eval_results is None
    assert "| WER (%) | 20 | 18 |" in text and "converted from the fractions" in text
    assert "not in the card's `model-index`" in text


def test_adapter_card(tmp_path):
    from voxtral_deploy.testing import write_safetensors_stub
    ad = tmp_path / "lora"; ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "mistralai/Voxtral-Mini-3B-2507",
                                                         "peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}))
    write_safetensors_stub(ad / "adapter_model.safetensors", {"x.lora_A.weight": ("F32", [8, 4])})
    text = render_card(ad, repo_id="alice/voxtral-lora")
    data = RepoCard(text).data.to_dict()
    assert data["library_name"] == "peft" and data["base_model_relation"] == "adapter" and "lora" in data["tags"]
    snippet = _snippet(text)
    assert "PeftModel.from_pretrained(model, adapter_id)" in snippet and 'base_model_id = "mistralai/Voxtral-Mini-3B-2507"' in snippet
    compile(snippet, "snippet", "exec")


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, msg", [(float("nan"), "is nan"), (float("inf"), "is inf"), (-0.5, "negative")])
def test_bad_metrics(fake_dir, value, msg):
    with pytest.raises(InvalidInputError, match=msg):
        render_card(fake_dir, results=TrainingResults(wer=value, metrics={"eval_wer": value}))


def test_bad_metric_file(fake_dir, tmp_path):
    (tmp_path / "eval_results.json").write_text('{"eval_wer": NaN}')
    with pytest.raises(InvalidInputError, match="nan"):
        render_card(fake_dir, results=tmp_path / "eval_results.json")


def test_bad_language(fake_dir):
    with pytest.raises(InvalidInputError, match="Unknown language code 'french'.*ISO 639-1"):
        render_card(fake_dir, languages=["french"])


def test_missing_and_unreadable_template(fake_dir, tmp_path):
    with pytest.raises(TemplateError, match="does not exist"):
        render_card(fake_dir, template_path=tmp_path / "missing.md")
    with pytest.raises(TemplateError, match="is a folder"):
        ModelCardGenerator(tmp_path)
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(TemplateError, match="not UTF-8"):
        ModelCardGenerator(tmp_path / "binary.md")
    t = tmp_path / "locked.md"; t.write_text("---\n{{ card_data }}\n---\n")
    t.chmod(0)
    try:
        if not os.access(t, os.R_OK):  # root reads it anyway: then only the cases above apply
            with pytest.raises(TemplateError, match="Cannot read"):
                ModelCardGenerator(t)
    finally: t.chmod(0o644)


def test_misspelt_variable(fake_dir, tmp_path):
    t = tmp_path / "typo.md"
    t.write_text((templates_dir() / "model_card.md").read_text().replace("{{ summary }}", "{{ sumary }}"))
    with pytest.raises(TemplateError, match="'sumary' is undefined.*Fix its spelling"):
        render_card(fake_dir, template_path=t)


def test_validate_card_rejects_bad_model_index(full_card):
    negative = re.sub(r"value: ([0-9.]+)", r"value: -\1", full_card, count=1)
    assert negative != full_card
    with pytest.raises(InvalidInputError, match="negative"):
        validate_card(negative)
    with pytest.raises(InvalidInputError, match="pipeline_tag"):
        validate_card(full_card.replace("pipeline_tag: automatic-speech-recognition", "pipeline_tag: text-generation"))


# -- packaging and import weight -------------------------------------------------------------------
def test_import_is_light():
    code = "import sys, voxtral_deploy.card; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"


# -- the how-to-use snippet, run ---------------------------------------------------------------------
@pytest.mark.timeout(300)
@pytest.mark.parametrize("languages", [["fr"], []], ids=["language", "autodetect"])
def test_snippet_transcribes_with_tiny_model(tiny_model_dir, clip_path, training_fixtures, tmp_path, languages):
    cfg = {k: v for k, v in load_training_config(training_fixtures["training_config"]).items() if k != "language"}
    text = render_card(tiny_model_dir, training_config=cfg, repo_id=REPO, metadata={"languages": languages})
    snippet = _snippet(text)
    for needle in ("VoxtralForConditionalGeneration", "AutoProcessor", "apply_transcription_request(", "model.generate(",
                   "outputs[:, inputs.input_ids.shape[1]:]"):
        assert needle in snippet, needle
    assert ('language="fr"' in snippet) == bool(languages)
    assert f'model_id = "{REPO}"' in snippet
    runnable = snippet.replace(f'"{REPO}"', json.dumps(str(tiny_model_dir))).replace('"path/to/audio.wav"', json.dumps(str(clip_path)))
    runnable += "\nimport json as _j\nprint('TRANSCRIPTION=' + _j.dumps({'type': type(transcription).__name__, 'text': transcription}))\n"
    (tmp_path / "snippet.py").write_text(runnable)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=280, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("TRANSCRIPTION="))
    result = json.loads(line.split("=", 1)[1])
    assert result["type"] == "str"


# -- a measured evaluation ---------------------------------------------------------------------------
# References with what breaks a markdown table: a pipe, a line break, HTML and emphasis.
EVAL_TEXTS = ["one two", "three | four", "five\nsix", "<b>seven</b> *eight*", "nine"]


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory) -> Path:
    "A second random tiny Voxtral (another seed): the 'base' the fine-tuned one is compared with."
    from voxtral_deploy.testing import make_tiny_voxtral
    return make_tiny_voxtral(tmp_path_factory.mktemp("base") / "base-voxtral", seed=1)


def _eval_helpers():
    pytest.importorskip("jiwer"); pytest.importorskip("whisper_normalizer")
    from voxtral_deploy.testing import audiofolder_parquet, make_eval_audiofolder
    return make_eval_audiofolder, audiofolder_parquet


def _table_rows(text: str, header: str) -> list[list[str]]:
    "The body rows of the table whose header line starts with `header`, cells split on unescaped pipes."
    lines = text.split("\n" + header, 1)[1].splitlines()[2:]
    rows = lines[:next((i for i, l in enumerate(lines) if not l.startswith("|")), len(lines))]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", l)[1:-1]] for l in rows]


def test_card_with_evaluation_round_trips_through_the_local_hub(hub, api, tiny_model_dir, base_model_dir, training_fixtures, tmp_path):
    import unicodedata
    from huggingface_hub import CommitOperationAdd
    from conftest import ALICE_WRITE
    from voxtral_deploy.evaluate import evaluate, load_eval_set
    _audiofolder, _parquet_bytes = _eval_helpers()
    api.create_repo("alice/words-eval", repo_type="dataset")
    sha = api.create_commit("alice/words-eval", [CommitOperationAdd("data/test-00000-of-00001.parquet", _parquet_bytes(_audiofolder(tmp_path / "words", EVAL_TEXTS)))],
                            commit_message="eval set", repo_type="dataset").oid
    eval_set = load_eval_set("alice/words-eval", split="test", endpoint=hub.endpoint, token=ALICE_WRITE)
    ev = evaluate(tiny_model_dir, eval_set, base_model=base_model_dir, language="en", batch_size=2, max_new_tokens=8)
    text = render_card(tiny_model_dir, training_config=training_fixtures["training_config"], results=training_fixtures["trainer_state"],
                       repo_id=REPO, endpoint=hub.endpoint, evaluation=ev)
    validate_card(text, endpoint=hub.endpoint)  # our checks and the hub's validate-yaml
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=text.encode(), path_in_repo="README.md", repo_id=REPO)
    loaded = ModelCard.load(api.hf_hub_download(REPO, "README.md", cache_dir=tmp_path / "dl"))
    assert str(loaded) == text and RepoCard(str(loaded)).data.to_dict() == RepoCard(text).data.to_dict()
    # model-index: the measured results only, with the dataset's split, revision and the source
    [result] = loaded.data.to_dict()["model-index"][0]["results"]
    assert result["dataset"] == {"type": "alice/words-eval", "name": "alice/words-eval", "split": "test", "revision": sha}
    assert result["source"] == {"name": "voxtral-deploy evaluate", "url": f"{hub.endpoint}/{REPO}/blob/main/eval_results.json"}
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"wer": ev.wer, "cer": ev.model.scores["cer"]}
    assert {(e.metric_type, e.dataset_revision) for e in loaded.data.eval_results} == {("wer", sha), ("cer", sha)}
    # the body: the eval set, the table with the base row and the difference, the normalizer
    assert text.index("## Evaluation") < text.index("## Results") and "Reported by the trainer" in text
    state = json.loads(training_fixtures["trainer_state"].read_text())
    wers = [e["eval_wer"] for e in state["log_history"] if "eval_wer" in e]
    assert f"| WER (%) | {round(wers[-1], 4):g} | {round(min(wers), 4):g} |" in text  # the trainer's table stays, labelled
    assert f"[alice/words-eval]({hub.endpoint}/datasets/alice/words-eval)" in text and f"[`{sha[:12]}`]" in text
    assert "| **Split** | test |" in text and "| **Clips** | 5 |" in text and "| **Config** | [More Information Needed] |" in text
    rows = {r[0]: r[1:] for r in _table_rows(text, "| model | WER (%) |")}
    assert list(rows) == ["this model", "base: base-voxtral", "difference (this model - base)"]
    assert rows["this model"][:3] == [f"{ev.wer:.2f}", f"{ev.model.scores['cer']:.2f}", f"{ev.model.scores['wer_raw']:.2f}"]
    assert rows["base: base-voxtral"][0] == f"{ev.base.scores['wer']:.2f}"
    assert rows["difference (this model - base)"][0] == f"{ev.delta_wer:+.2f}"
    assert "Whisper English normalizer" in text and "Open ASR Leaderboard" in text
    # the five worst clips, user text escaped so the table keeps its five columns
    worst = _table_rows(text, "| clip | reference | hypothesis |")
    assert len(worst) == 5 and all(len(r) == 5 for r in worst)
    refs = {r[0]: r[1] for r in worst}
    assert refs["clip1.wav"] == "three \\| four" and refs["clip2.wav"] == "five six"
    assert refs["clip3.wav"] == "\\<b\\>seven\\</b\\> \\*eight\\*"
    assert [r[3] for r in worst] == [f"{w['wer']:.2f}" for w in ev.worst(5)]
    assert not [c for c in text if unicodedata.category(c) == "Cc" and c != "\n"]  # random-model bytes made visible
    assert str(tiny_model_dir) not in text and str(base_model_dir) not in text  # local paths stay off the card


def test_card_with_local_evaluation_and_no_trainer_results(fake_dir, tiny_model_dir, tmp_path):
    from voxtral_deploy.evaluate import evaluate
    _audiofolder, _ = _eval_helpers()
    ev = evaluate(tiny_model_dir, _audiofolder(tmp_path / "words" / "test", EVAL_TEXTS).parent, language="en", max_new_tokens=8)
    v = card_variables(inspect_model(fake_dir), repo_id=REPO, evaluation=ev)
    json.dumps(v)  # still serializable, for `voxtral-deploy card --json`
    text = ModelCardGenerator().generate_model_card(v)
    card = validate_card(text)
    assert {(e.metric_type, e.dataset_type, e.dataset_split, e.dataset_revision, e.source_name) for e in card.data.eval_results} == \
           {("wer", "words", "test", None, "voxtral-deploy evaluate"), ("cer", "words", "test", None, "voxtral-deploy evaluate")}
    assert "| **Dataset** | words |" in text and "| **Revision** | [More Information Needed] |" in text
    assert "the measured ones are under Evaluation above" in text and "no evaluation results" not in text
    assert "difference" not in text and "base WER" not in text and "base:" not in text
    assert "None" not in _prose(RepoCard(text).text)
    with pytest.raises(InvalidInputError, match="EvalResult that evaluate"):
        card_variables(inspect_model(fake_dir), evaluation={"wer": 12.0})
