"""Speech-to-text demo for a fine-tuned Voxtral model (a Gradio Space made by voxtral-deploy).

Everything that varies between deployments comes from environment variables (the Space's variables):
`HF_MODEL_ID` and `MODEL_REVISION` say exactly which published commit to serve. The transcription
logic lives in `inference.py` beside this file; this file is UI glue.

Run locally:  HF_MODEL_ID=user/model MODEL_REVISION=<commit> python app.py
"""
from __future__ import annotations

import concurrent.futures
import html
import json
import os
import sys
import traceback
from pathlib import Path

try:  # ZeroGPU Spaces provide `spaces`, which must be imported before anything touches CUDA
    import spaces
except ImportError:  # elsewhere the GPU decorator is not needed
    spaces = None

import gradio as gr

from inference import LANGUAGES, AudioInputError, Transcriber


def _env(name: str, default: str = "") -> str:
    "An environment variable with surrounding blanks removed; `default` when unset or blank."
    value = os.environ.get(name, "").strip()
    return value or default


def _env_number(name: str, default: float, cast=float, minimum: float = 0) -> float:
    "A numeric environment variable; a malformed or out-of-range value stops the app with a clear message."
    raw = _env(name)
    if not raw: return default
    try: value = cast(raw)
    except ValueError: raise RuntimeError(f"The variable {name}={raw!r} is not a number: fix it in the Space settings.") from None
    if value < minimum: raise RuntimeError(f"The variable {name}={raw!r} must be at least {minimum}: fix it in the Space settings.")
    return value


# ---- Configuration (Space variables) ----------------------------------------------------------
HF_MODEL_ID = _env("HF_MODEL_ID")                      # the published model, e.g. "alice/voxtral-breton"
MODEL_REVISION = _env("MODEL_REVISION")                # the published commit: the demo serves exactly this
MODEL_SUBFOLDER = _env("MODEL_SUBFOLDER") or None      # e.g. "int4" for the quantized variant
BASE_MODEL_REVISION = _env("BASE_MODEL_REVISION") or None  # for a LoRA adapter: the base model's commit
MODEL_NAME = _env("MODEL_NAME", HF_MODEL_ID.rstrip("/").rsplit("/", 1)[-1] or "Voxtral")
HF_USERNAME = _env("HF_USERNAME")                      # who published it (shown as a link)
SPACE_TITLE = _env("SPACE_TITLE", f"{MODEL_NAME}: speech to text")
SPACE_DESCRIPTION = _env("SPACE_DESCRIPTION", f"Upload or record audio and {MODEL_NAME} transcribes it.")
SPACE_LINKS = _env("SPACE_LINKS", "{}")                # JSON object: label -> https URL
HF_ENDPOINT = _env("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
MAX_AUDIO_SECONDS = _env_number("MAX_AUDIO_SECONDS", 300.0, minimum=0.1)   # longer clips are refused
MAX_NEW_TOKENS = int(_env_number("MAX_NEW_TOKENS", 512, int, minimum=1))  # upper bound of the slider
QUEUE_SIZE = int(_env_number("QUEUE_SIZE", 16, int, minimum=1))            # waiting requests before "busy"
INFERENCE_TIMEOUT = _env_number("INFERENCE_TIMEOUT", 120.0, minimum=1)     # seconds per transcription
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".m4a", ".webm")

ON_ZEROGPU = spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true", "yes")


def _links() -> dict[str, str]:
    "Links shown under the description: the model page, its publisher, then SPACE_LINKS."
    try: extra = json.loads(SPACE_LINKS)
    except json.JSONDecodeError: raise RuntimeError("The variable SPACE_LINKS must be a JSON object of label -> URL.") from None
    if not isinstance(extra, dict): raise RuntimeError("The variable SPACE_LINKS must be a JSON object of label -> URL.")
    links = {}
    if HF_MODEL_ID and not Path(HF_MODEL_ID).is_dir(): links["Model"] = f"{HF_ENDPOINT}/{HF_MODEL_ID}"
    if HF_USERNAME: links[f"@{HF_USERNAME}"] = f"{HF_ENDPOINT}/{HF_USERNAME}"
    # Only web links: a `javascript:` URL in a Space variable must not become a clickable link.
    links.update({str(k): str(v) for k, v in extra.items() if str(v).startswith(("https://", "http://"))})
    return links


# ---- The model: loaded once, at exactly MODEL_REVISION, or the app does not start ----------------
def load_model() -> tuple[Transcriber, str]:
    "Load the model named by HF_MODEL_ID at MODEL_REVISION; returns it and the commit it came from."
    if not HF_MODEL_ID:
        raise RuntimeError("HF_MODEL_ID is not set: add it to the Space variables (the model repo id, e.g. alice/voxtral-breton).")
    local = Path(HF_MODEL_ID).is_dir()  # a local folder (development): nothing to pin
    if not local and not MODEL_REVISION:
        raise RuntimeError(f"MODEL_REVISION is not set: add it to the Space variables (the commit of {HF_MODEL_ID} "
                           "to serve). The demo never picks a revision by itself.")
    try:
        # `revision` is resolved to one commit id and every file comes from that commit; no fallback.
        transcriber = Transcriber.from_pretrained(HF_MODEL_ID, revision=None if local else MODEL_REVISION,
                                                  subfolder=MODEL_SUBFOLDER, base_revision=BASE_MODEL_REVISION)
    except Exception as e:
        raise RuntimeError(f"Cannot load {HF_MODEL_ID} at revision {MODEL_REVISION}"
                           f"{f' (subfolder {MODEL_SUBFOLDER})' if MODEL_SUBFOLDER else ''}: {type(e).__name__}: {e}. "
                           "Check HF_MODEL_ID, MODEL_REVISION, MODEL_SUBFOLDER (and BASE_MODEL_REVISION for an adapter) "
                           "in the Space variables, and the "
                           "HF_TOKEN secret if the model is private.") from e
    transcriber.max_audio_seconds = MAX_AUDIO_SECONDS
    return transcriber, transcriber.revision or "local"


TRANSCRIBER, MODEL_COMMIT = load_model()
print(f"[demo] serving {HF_MODEL_ID} at commit {MODEL_COMMIT}"
      f"{f' subfolder {MODEL_SUBFOLDER}' if MODEL_SUBFOLDER else ''}"
      f"{f' on base commit {TRANSCRIBER.base_revision}' if TRANSCRIBER.base_revision else ''} (requested revision: {MODEL_REVISION or '-'})",
      file=sys.stderr, flush=True)


# ---- Transcription ------------------------------------------------------------------------------
LANGUAGE_CHOICES = [("Auto-detect", "auto")] + [(f"{name} ({code})", code) for code, name in LANGUAGES.items()]
_NAMES = {name.lower(): code for code, name in LANGUAGES.items()}


def _language_code(language: str | None) -> str | None:
    "None for automatic detection, else a code from LANGUAGES (API callers may also pass a name)."
    lang = (language or "").strip()
    if lang.lower() in ("", "auto", "auto-detect"): return None
    if lang in LANGUAGES: return lang
    if lang.lower() in _NAMES: return _NAMES[lang.lower()]
    raise gr.Error(f"Unknown language {language!r}: use 'auto' or one of {', '.join(LANGUAGES)}.", print_exception=False)


def _confidence_label(p: float) -> str | None:
    "The highlight of one token: only doubtful tokens are coloured."
    return "low" if p < 0.5 else "medium" if p < 0.8 else None


def _generate(audio, language, max_new_tokens):
    return TRANSCRIBER.transcribe(audio, language=language, max_new_tokens=max_new_tokens, timeout=INFERENCE_TIMEOUT)


if ON_ZEROGPU: _generate = spaces.GPU(duration=int(INFERENCE_TIMEOUT) + 30)(_generate)

# The model runs on one thread of its own. Gradio hands each request to whichever of its worker threads is free,
# and torch keeps state per calling thread (an OpenMP team, allocator caches): a model called from many threads
# makes the process grow in steps. Requests still run one at a time (the queue's concurrency limit is 1). On
# ZeroGPU the `spaces` decorator moves the call to a GPU worker itself.
_MODEL_THREAD = None if ON_ZEROGPU else concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")


def _run_model(*args):
    return _generate(*args) if _MODEL_THREAD is None else _MODEL_THREAD.submit(_generate, *args).result()


def transcribe(audio: str | None, language: str = "auto", max_new_tokens: float = MAX_NEW_TOKENS):
    "Transcribe one clip: returns the text, its mean confidence, per-token highlights and details."
    if not audio:
        raise gr.Error("No audio: upload a file or record with the microphone, then press Transcribe.", print_exception=False)
    code = _language_code(language)
    try: n = int(max_new_tokens)
    except (TypeError, ValueError): raise gr.Error(f"max_new_tokens must be a number, not {max_new_tokens!r}.", print_exception=False) from None
    n = max(1, min(n, MAX_NEW_TOKENS))
    try:
        result = _run_model(audio, code, n)
    except AudioInputError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # a bug or a broken model: say so plainly, keep the traceback in the logs
        traceback.print_exc()
        raise gr.Error(f"The model failed on this clip ({type(e).__name__}); the details are in the Space logs.",
                       print_exception=False) from None
    for warning in getattr(result, "warnings", []):  # silent audio, cut short by the time limit, ...
        gr.Warning(warning)
    highlights = [(tok, _confidence_label(p)) for tok, p in result.token_confidences]
    details = {**result.to_dict(), "model": HF_MODEL_ID, "revision": MODEL_COMMIT, "subfolder": MODEL_SUBFOLDER}
    details.pop("token_confidences", None)
    return result.text, round(float(result.confidence), 4), highlights, details


def model_info() -> dict:
    "Which model this demo serves: repo id, requested revision, resolved commit and limits."
    return {"model": HF_MODEL_ID, "revision": MODEL_REVISION or None, "commit": MODEL_COMMIT,
            "subfolder": MODEL_SUBFOLDER, "base_commit": TRANSCRIBER.base_revision, "name": MODEL_NAME, "max_audio_seconds": MAX_AUDIO_SECONDS,
            "max_new_tokens": MAX_NEW_TOKENS, "queue_size": QUEUE_SIZE, "zerogpu": ON_ZEROGPU}


# ---- The page -----------------------------------------------------------------------------------
def _header() -> str:
    links = " · ".join(f"[{html.escape(label)}]({url})" for label, url in _links().items())
    return "\n\n".join(p for p in (f"# {html.escape(SPACE_TITLE)}", html.escape(SPACE_DESCRIPTION), links) if p)


def _examples() -> list[list[str]]:
    if not EXAMPLES_DIR.is_dir(): return []
    return [[str(p), "auto"] for p in sorted(EXAMPLES_DIR.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]


with gr.Blocks(title=SPACE_TITLE) as demo:
    gr.Markdown(_header(), elem_id="header")
    with gr.Row():
        with gr.Column():
            audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio", elem_id="audio-input")
            language_in = gr.Dropdown(LANGUAGE_CHOICES, value="auto", label="Language", elem_id="language")
            with gr.Accordion("Advanced options", open=False):
                tokens_in = gr.Slider(1, MAX_NEW_TOKENS, value=MAX_NEW_TOKENS, step=1, label="Max new tokens",
                                      info="Upper bound on the length of the transcription.", elem_id="max-new-tokens")
            with gr.Row():
                gr.ClearButton([audio_in])
                run = gr.Button("Transcribe", variant="primary", elem_id="transcribe-button")
        with gr.Column():
            text_out = gr.Textbox(label="Transcription", lines=6, buttons=["copy"], elem_id="transcription")
            confidence_out = gr.Number(None, label="Mean confidence (0-1)", precision=3, elem_id="confidence")
            tokens_out = gr.HighlightedText(label="Per-token confidence (doubtful tokens highlighted)",
                                            color_map={"low": "red", "medium": "yellow"}, show_legend=True,
                                            elem_id="token-confidence")
            with gr.Accordion("Details", open=False):
                details_out = gr.JSON(label="Details", elem_id="details")
    if _examples():
        gr.Examples(_examples(), inputs=[audio_in, language_in], cache_examples=False)
    gr.Markdown(f"Serving `{html.escape(HF_MODEL_ID)}` at commit `{html.escape(MODEL_COMMIT)}`"
                f"{f' (subfolder `{html.escape(MODEL_SUBFOLDER)}`)' if MODEL_SUBFOLDER else ''}, "
                f"clips up to {MAX_AUDIO_SECONDS:g} s.", elem_id="model-revision")
    run.click(transcribe, [audio_in, language_in, tokens_in], [text_out, confidence_out, tokens_out, details_out],
              api_name="transcribe")
    gr.api(model_info, api_name="model_info", queue=False)

# One transcription at a time; a full queue answers "Queue is full! Please try again." instead of piling up.
demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch()  # host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
