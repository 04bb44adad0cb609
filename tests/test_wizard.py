"""The ipywidgets wizard, driven headless (.value / .click()) end to end against the local hub."""
import json
from pathlib import Path

import pytest

from conftest import ALICE_WRITE, ALICE_READ, BOB_WRITE

CANARY = "hf_FakeCanaryToken0000000000000000099"


@pytest.fixture
def canary_hub(tmp_path):
    from conftest import TOKENS
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path / "hub", tokens={**TOKENS, CANARY: {"user": "carol", "role": "write"}}) as h:
        yield h


def _widget_values(wz):
    import ipywidgets as w
    return [str(v.value) for v in vars(wz).values() if isinstance(v, w.ValueWidget)]


@pytest.mark.slow
def test_wizard_end_to_end(canary_hub, tiny_model_dir, training_fixtures, tmp_path, capfd):
    "Publish through the widgets, headless (no Space: the deploy with a Space through the wizard is test_browser_wizard's)."
    from voxtral_deploy.wizard import DeployWizard
    from huggingface_hub import HfApi
    wz = DeployWizard()
    # 1. the model folder, validated, with its inspection summary and a hardware suggestion
    wz.model_dir.value = str(tiny_model_dir)
    wz.inspect_button.click()
    assert wz.artifacts is not None and "model.safetensors" in wz.model_info.value
    assert "cpu-basic" in wz.hardware_hint.value
    # 2. identity: a local hub, the token typed in the password box; whoami shows user and role
    wz.hub_choice.value = "Local hub"
    wz.endpoint.value = canary_hub.endpoint
    wz.token.value = CANARY
    wz.whoami_button.click()
    assert "carol" in wz.whoami_info.value and "write" in wz.whoami_info.value
    assert wz.token.value == ""  # taken out of the form at once
    # 3. metadata
    wz.repo_id.value = "voxtral-wizard"
    wz.name.value = "Voxtral Wizard"
    wz.description.value = "Deployed from the wizard."
    wz.languages.value = "fr"
    wz.license.value = "mit"
    wz.base_model.value = "mistralai/Voxtral-Mini-3B-2507"
    wz.dataset.value = "mozilla-foundation/common_voice_17_0"
    wz.training_config.value = str(training_fixtures["training_config"])
    wz.results.value = str(training_fixtures["trainer_state"])
    # 4. the card, rendered
    wz.preview_button.click()
    assert wz.error is None, wz.card_preview.value
    assert "Voxtral Wizard" in wz.card_preview.value and "<h1>" in wz.card_preview.value
    # 5-6. options
    wz.private.value = False
    wz.space.value = False
    # 7. run
    wz.run_button.click()
    rec = wz.record
    assert wz.error is None, wz.message.value
    assert rec and rec.status == "ok" and rec.model["repo_id"] == "carol/voxtral-wizard"
    assert rec.space_url is None and wz.run.steps["space"] == "skipped"
    assert wz.progress_bar.value == 1.0 and wz.progress_bar.bar_style == "success"
    assert rec.model_url in wz.links.value and "/spaces/" not in wz.links.value
    assert wz.step_status.value.count("✅") == 5
    api = HfApi(endpoint=canary_hub.endpoint, token=CANARY)
    assert api.model_info("carol/voxtral-wizard").sha == rec.model["commit"]
    card = api.hf_hub_download("carol/voxtral-wizard", "README.md", local_dir=tmp_path / "dl")
    assert "license: mit" in Path(card).read_text()
    # the token is nowhere: config, record (memory and disk), widgets, output
    cfg = wz.build_config().to_dict()
    assert CANARY not in json.dumps(cfg) and CANARY not in json.dumps(rec.to_dict())
    assert all(CANARY not in v for v in _widget_values(wz))
    assert CANARY not in Path(rec.path).read_text()
    for p in Path(rec.path).parent.rglob("*"):
        if p.is_file(): assert CANARY.encode() not in p.read_bytes()
    out = capfd.readouterr()
    assert CANARY not in out.out and CANARY not in out.err
    for html in (wz.message.value, wz.links.value, wz.step_status.value, wz.whoami_info.value, wz.model_info.value):
        assert CANARY not in html


def test_wizard_shows_errors(hub, tiny_model_dir, tmp_path):
    from voxtral_deploy.wizard import DeployWizard
    wz = DeployWizard(tiny_model_dir, endpoint=hub.endpoint)
    # a token the hub doesn't know: the message is in the wizard, redacted
    wz.token.value = "hf_FakeUnknownToken00000000000000000077"
    wz.whoami_button.click()
    assert wz.error is not None and "hf_FakeUnknown" not in wz.whoami_info.value and wz.whoami_info.value
    # a read token can't publish: the publish step fails in the wizard, with what was (not) published
    wz.token.value = ALICE_READ
    wz.whoami_button.click()
    assert "read" in wz.whoami_info.value
    wz.repo_id.value = "alice/voxtral-ro"
    wz.space.value = False
    wz.run_button.click()
    assert wz.record is not None and wz.record.status == "failed"
    assert wz.progress_bar.bar_style == "danger"
    assert "publish" in wz.message.value and "NOT published" in wz.message.value
    assert "❌" in wz.step_status.value
    assert ALICE_READ not in wz.message.value


def test_wizard_eval_settings_reach_the_run(hub, tiny_model_dir, tmp_path):
    "The form's eval set goes into the config; a bad one fails at the evaluate step in the wizard, before anything is published."
    from huggingface_hub import HfApi
    from voxtral_deploy.testing import make_clip
    from voxtral_deploy.wizard import DeployWizard
    ev = tmp_path / "digits" / "test"; ev.mkdir(parents=True)
    make_clip(ev / "a.wav", seconds=0.4)
    (ev / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "one"}) + "\n")
    wz = DeployWizard(tiny_model_dir, endpoint=hub.endpoint, repo_id="alice/voxtral-eval")
    wz.token.value = ALICE_WRITE
    wz.whoami_button.click()
    wz.space.value = False
    wz.eval_dataset.value, wz.eval_split.value, wz.eval_max_samples.value = str(tmp_path / "digits"), "validation", "5"
    cfg = wz.build_config()
    assert (cfg.eval_dataset, cfg.eval_split, cfg.eval_max_samples) == (str(tmp_path / "digits"), "validation", 5)
    wz.run_button.click()
    assert wz.record is not None and wz.record.status == "failed" and wz.record.error["step"] == "evaluate"
    assert "has no split 'validation': it has test" in wz.record.error["message"] and "NOT published" in wz.message.value
    assert "evaluate step" in wz.message.value and "❌" in wz.step_status.value
    assert not HfApi(endpoint=hub.endpoint, token=ALICE_WRITE).repo_exists("alice/voxtral-eval")
