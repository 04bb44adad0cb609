"""Speech-to-text demo for a fine-tuned Voxtral model (a Gradio Space made by voxtral-deploy).

Everything that varies between deployments comes from environment variables (the Space's variables):
`HF_MODEL_ID` and `MODEL_REVISION` say exactly which published commit to serve. The transcription
logic lives in `inference.py` beside this file; this file is UI glue.

Run locally:  HF_MODEL_ID=user/model MODEL_REVISION=<commit> python app.py
"""
from __future__ import annotations

import html
import json
import os
import sys
import time
import traceback
from pathlib import Path

try:  # ZeroGPU Spaces provide `spaces`, which must be imported before anything touches CUDA
    import spaces
except ImportError:  # elsewhere the GPU decorator is not needed
    spaces = None

import gradio as gr

from inference import LANGUAGES, AudioInputError, Transcriber, load_audio
from live import BusyError, RequestBatcher
from realtime import RealtimeTranscriber, is_realtime
from metrics import DemoMetrics


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
MAX_BATCH_SIZE = int(_env_number("MAX_BATCH_SIZE", 8, int, minimum=1))     # concurrent requests in one generate call
BATCH_WAIT_MS = _env_number("BATCH_WAIT_MS", 5.0, minimum=0)               # how long a request waits for others to join
BATCH_REGROUP_MS = _env_number("BATCH_REGROUP_MS", 300.0, minimum=0)       # ... and for the last batch's clients to come back
STREAM_INTERVAL = _env_number("STREAM_INTERVAL", 0.05, minimum=0)          # seconds between streamed text updates
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
def _model_is_realtime(local: bool) -> bool:
    "Whether HF_MODEL_ID at MODEL_REVISION is a Voxtral Realtime (its config.json says so; an adapter has none)."
    if local:
        folder = Path(HF_MODEL_ID) / (MODEL_SUBFOLDER or "")
        return (folder / "config.json").is_file() and is_realtime(folder)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    try: return is_realtime(hf_hub_download(HF_MODEL_ID, "config.json", revision=MODEL_REVISION, subfolder=MODEL_SUBFOLDER))
    except EntryNotFoundError: return False


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
        kind = RealtimeTranscriber if _model_is_realtime(local) else Transcriber
        transcriber = kind.from_pretrained(HF_MODEL_ID, revision=None if local else MODEL_REVISION,
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
REALTIME = isinstance(TRANSCRIBER, RealtimeTranscriber)  # a streaming model: uploads are fed in chunks, the microphone live
METRICS = DemoMetrics(MODEL_COMMIT)  # bounded counters of this process, served at api_name="metrics"


def _feedback_log():
    "Where visitors' flags go: FEEDBACK_DATASET (set by the deployer), written with the FEEDBACK_TOKEN secret; None when off."
    dataset = _env("FEEDBACK_DATASET")
    if not dataset: return None
    token = _env("FEEDBACK_TOKEN")
    if not token: raise RuntimeError(f"FEEDBACK_DATASET={dataset} is set but the FEEDBACK_TOKEN secret is not: add a fine-grained "
                                     "token that can write to that dataset only, or remove the variable.")
    from feedback import FeedbackLog
    return FeedbackLog(dataset, token=token, every=_env_number("FEEDBACK_EVERY_MINUTES", 1.0, minimum=0.01), model_commit=MODEL_COMMIT)


FEEDBACK = _feedback_log()
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


# The model runs on one thread of its own, the batcher's. Gradio hands each request to whichever of its worker
# threads is free (up to MAX_BATCH_SIZE at once); each reads its audio there and queues it. The model thread takes
# the first waiting request, gathers those that arrive within BATCH_WAIT_MS and transcribes them in one `generate`
# call, streaming each one's text back as the tokens come. (torch keeps state per calling thread, an OpenMP team
# and allocator caches: a model called from many threads makes the process grow in steps.)
# On ZeroGPU the `spaces` decorator moves each call to a GPU worker itself: one request per call, the text at once.
def _generate(audio, language, max_new_tokens):
    return TRANSCRIBER.transcribe(audio, language=language, max_new_tokens=max_new_tokens, timeout=INFERENCE_TIMEOUT)


if ON_ZEROGPU: _generate = spaces.GPU(duration=int(INFERENCE_TIMEOUT) + 30)(_generate)
BATCHER = None if ON_ZEROGPU or REALTIME else RequestBatcher(TRANSCRIBER, max_batch_size=MAX_BATCH_SIZE, wait_ms=BATCH_WAIT_MS,
                                                 regroup_ms=BATCH_REGROUP_MS, max_pending=QUEUE_SIZE + MAX_BATCH_SIZE)


def _updates(audio, code, n):
    "The text so far (str) while the model writes, then the final Transcription."
    if REALTIME:  # the clip goes through a live session in 80 ms chunks, as a microphone would send it
        array, _ = load_audio(audio, max_seconds=MAX_AUDIO_SECONDS)
        step = TRANSCRIBER.processor.raw_audio_length_per_tok
        yield from TRANSCRIBER.stream((array[i:i + step] for i in range(0, array.size, step)), stream_interval=STREAM_INTERVAL)
        return
    if BATCHER is None:
        yield _generate(audio, code, n)
        return
    # the model thread puts the text on the queue every STREAM_INTERVAL only: each update wakes this thread,
    # which then takes turns at the GIL with the model's after every token (up to 5 ms each on a small model)
    yield from BATCHER.submit(audio, language=code, max_new_tokens=n, timeout=INFERENCE_TIMEOUT,
                              stream_interval=STREAM_INTERVAL).updates()


def _max_new_tokens(value) -> int:
    "The token bound asked for, as an int in [1, MAX_NEW_TOKENS]; a clear error for anything else."
    try: n = float(value)
    except (TypeError, ValueError): n = None
    if n is None or n != n or not n.is_integer() or not 1 <= n <= MAX_NEW_TOKENS:
        raise gr.Error(f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}, not {value!r}.", print_exception=False)
    return int(n)


def _summary(result) -> str:
    "What a person should see besides the text: its mean confidence, and each warning (cut short, silent audio)."
    lines = [f"Mean confidence {result.confidence:.3f} over {result.num_tokens} tokens, {result.seconds:.2f} s"]
    return "\n\n".join(lines + [f"⚠️ {html.escape(w)}" for w in result.warnings])


def transcribe(audio: str | None, language: str = "auto", max_new_tokens: float = MAX_NEW_TOKENS):
    "Transcribe one clip, the text growing as it is written: yields (text, confidence, highlights, details, warnings)."
    if not audio:
        raise gr.Error("No audio: upload a file or record with the microphone, then press Transcribe.", print_exception=False)
    code = _language_code(language)
    n = _max_new_tokens(max_new_tokens)
    try:
        for update in _updates(audio, code, n):
            # the text so far: the first words at once, then at most every STREAM_INTERVAL seconds (the model's side
            # throttles). The other outputs are cleared, not skipped: they belonged to the previous clip, and Gradio
            # keeps a new component object in the session for every gr.skip() (~26 KB a request, never freed)
            if isinstance(update, str): yield update, None, None, None, ""
            else: result = update
    except (AudioInputError, BusyError) as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # a bug or a broken model: say so plainly, keep the traceback in the logs
        traceback.print_exc()
        raise gr.Error(f"The model failed on this clip ({type(e).__name__}); the details are in the Space logs.",
                       print_exception=False) from None
    for warning in result.warnings:  # silent audio, cut short by the time limit or by max_new_tokens
        gr.Warning(warning)
    highlights = [(tok, _confidence_label(p)) for tok, p in result.token_confidences]
    details = {**result.to_dict(), "model": HF_MODEL_ID, "revision": MODEL_COMMIT, "subfolder": MODEL_SUBFOLDER}
    details.pop("token_confidences", None)
    yield result.text, round(float(result.confidence), 4), highlights, details, _summary(result)


def _error_kind(e: BaseException) -> str:
    "The kind an error counts as: what `transcribe` turned into a gr.Error (bad audio, busy, the model) or the input."
    cause = e.__context__ if isinstance(e, gr.Error) else e
    if isinstance(cause, AudioInputError): return "bad-audio"
    if isinstance(cause, BusyError): return "busy"
    if isinstance(e, gr.Error) and cause is None: return "bad-input"  # no audio, unknown language, bad max_new_tokens
    return "model"


def _counted(fn):
    "Count each call of the generator `fn` in METRICS: its latency, the audio seconds, or the kind of error."
    def counted(audio: str | None, language: str = "auto", max_new_tokens: float = MAX_NEW_TOKENS):
        t0, last = time.perf_counter(), None
        try:
            for last in fn(audio, language, max_new_tokens): yield last
        except BaseException as e:
            METRICS.record(time.perf_counter() - t0, error=_error_kind(e)); raise
        details = last[3] if last and isinstance(last[3], dict) else {}
        METRICS.record(time.perf_counter() - t0, audio_s=details.get("duration"))
    counted.__name__, counted.__doc__ = fn.__name__, fn.__doc__
    return counted


transcribe = _counted(transcribe)


def flag_transcription(audio: str | None, transcription: str, correction: str = "") -> str:
    "Flag a transcription as wrong, with the correct text if known: the clip and both texts go to the feedback dataset."
    if FEEDBACK is None: raise gr.Error("Feedback is not collected by this demo.", print_exception=False)
    if not audio or not (transcription or "").strip():
        raise gr.Error("Transcribe a clip first, then flag its transcription.", print_exception=False)
    FEEDBACK.flag(audio, transcription, correction)
    return "Thank you: the clip and the correction were saved for the next fine-tune."


def usage_metrics() -> dict:
    "What this demo has done since it started: requests, errors by kind, queue rejections, audio seconds, latency, RTF."
    return METRICS.snapshot()


def model_info() -> dict:
    "Which model this demo serves: repo id, requested revision, resolved commit and limits."
    return {"model": HF_MODEL_ID, "revision": MODEL_REVISION or None, "commit": MODEL_COMMIT,
            "subfolder": MODEL_SUBFOLDER, "base_commit": TRANSCRIBER.base_revision, "name": MODEL_NAME, "max_audio_seconds": MAX_AUDIO_SECONDS,
            "max_new_tokens": MAX_NEW_TOKENS, "queue_size": QUEUE_SIZE, "zerogpu": ON_ZEROGPU,
            "batching": BATCHER.stats() if BATCHER is not None else None, "realtime": REALTIME}


# ---- Live microphone (Voxtral Realtime only) -------------------------------------------------------
def live_step(chunk, session):
    "One piece of microphone audio: fed to this visitor's live session; returns the text so far and the session."
    if chunk is None: return gr.skip(), session
    try: samples, _ = load_audio(chunk, max_seconds=0)
    except AudioInputError: return gr.skip(), session
    if session is None: session = {"session": TRANSCRIBER.session(max_seconds=MAX_AUDIO_SECONDS, stream_interval=STREAM_INTERVAL), "text": ""}
    session["session"].feed(samples)
    while not session["session"].queue.empty():  # the newest text so far (the final result stays queued)
        item = session["session"].queue.queue[0]
        if not isinstance(item, str): break
        session["text"] = session["session"].queue.get_nowait()
    return session["text"], session


def live_stop(session):
    "The speaker stopped: the model finishes the words it heard; returns the final text."
    if session is None: return gr.skip(), None
    try: return session["session"].result().text, None
    except Exception as e:
        traceback.print_exc()
        raise gr.Error(f"The live transcription failed ({type(e).__name__}); the details are in the Space logs.", print_exception=False) from None


# ---- The page -----------------------------------------------------------------------------------
class TokenSlider(gr.Slider):
    "The max-new-tokens slider; `transcribe` checks its value itself, so an API caller's bad value gets a clear message."
    is_template = True  # drawn by Gradio's own slider

    def preprocess(self, payload):
        return payload


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
                tokens_in = TokenSlider(1, MAX_NEW_TOKENS, value=MAX_NEW_TOKENS, step=1, label="Max new tokens",
                                        info="Upper bound on the length of the transcription.", elem_id="max-new-tokens")
            with gr.Row():
                gr.ClearButton([audio_in])
                run = gr.Button("Transcribe", variant="primary", elem_id="transcribe-button")
        with gr.Column():
            text_out = gr.Textbox(label="Transcription", lines=6, buttons=["copy"], elem_id="transcription")
            summary_out = gr.Markdown("", elem_id="summary")  # confidence and warnings, once there is a result
            # The API's float; not drawn, since an empty Number shows "0" before anything ran.
            confidence_out = gr.Number(None, label="Mean confidence (0-1)", precision=3, visible=False, elem_id="confidence")
            tokens_out = gr.HighlightedText(label="Per-token confidence (doubtful tokens highlighted)",
                                            color_map={"low": "red", "medium": "yellow"}, show_legend=True,
                                            elem_id="token-confidence")
            with gr.Accordion("Details", open=False):
                details_out = gr.JSON(label="Details", elem_id="details")
    if REALTIME:
        with gr.Row(elem_id="live"):
            live_in = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Live: speak, the text follows",
                               elem_id="live-mic")
            live_out = gr.Textbox(label="Live transcription", lines=4, elem_id="live-transcription")
        live_state = gr.State(None)
        live_in.stream(live_step, [live_in, live_state], [live_out, live_state], stream_every=0.5,
                       time_limit=MAX_AUDIO_SECONDS, concurrency_limit=1, api_name="live")
        live_in.stop_recording(live_stop, [live_state], [live_out, live_state], api_name="live_stop")
    if _examples():
        gr.Examples(_examples(), inputs=[audio_in, language_in], cache_examples=False)
    gr.Markdown(f"Serving `{html.escape(HF_MODEL_ID)}` at commit `{html.escape(MODEL_COMMIT)}`"
                f"{f' (subfolder `{html.escape(MODEL_SUBFOLDER)}`)' if MODEL_SUBFOLDER else ''}, "
                f"clips up to {MAX_AUDIO_SECONDS:g} s.", elem_id="model-revision")
    run.click(transcribe, [audio_in, language_in, tokens_in],
              [text_out, confidence_out, tokens_out, details_out, summary_out], api_name="transcribe")
    with gr.Accordion("Wrong transcription?", open=False, visible=FEEDBACK is not None, elem_id="feedback"):
        correction_in = gr.Textbox(label="What was said (optional)", lines=2, elem_id="correction")
        flag_out = gr.Markdown("", elem_id="flag-status")
        gr.Button("Flag as wrong", size="sm", elem_id="flag-button").click(
            flag_transcription, [audio_in, text_out, correction_in], flag_out, api_name="flag")
    with gr.Accordion("Usage since start", open=False):
        metrics_out = gr.JSON(label="Metrics", elem_id="metrics")
        gr.Button("Refresh", size="sm", elem_id="metrics-refresh").click(usage_metrics, None, metrics_out, api_name=False, queue=False)
    gr.api(model_info, api_name="model_info", queue=False)
    gr.api(usage_metrics, api_name="metrics", queue=False)

# Up to MAX_BATCH_SIZE requests at once (the batcher runs them together); a full queue answers
# "Queue is full! Please try again." instead of piling up.
demo.queue(default_concurrency_limit=1 if ON_ZEROGPU else MAX_BATCH_SIZE, max_size=QUEUE_SIZE)

_queue_push = demo._queue.push  # gradio refuses a request in Queue.push when the queue is full: count those refusals


async def _counting_push(*args, **kwargs):
    out = await _queue_push(*args, **kwargs)
    if out[2] == "queue_full": METRICS.reject()
    return out


demo._queue.push = _counting_push

if __name__ == "__main__":
    demo.launch()  # host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
