"Space-test helpers shared by the local hub's Space tests: a tiny echo app and a wait for a runtime stage."
import time

_ECHO_APP = '''import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(BODY).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
print("app starting", flush=True)
http.server.HTTPServer((os.environ["GRADIO_SERVER_NAME"], int(os.environ["GRADIO_SERVER_PORT"])), H).serve_forever()
'''


def echo_app(body: str) -> str:
    "The source of an app.py that answers every GET with the JSON of the Python expression `body` (evaluated per request)."
    return _ECHO_APP.replace("BODY", body)


def wait_stage(api, repo_id, stages, timeout=60):
    "Poll the Space's runtime until its stage is one of `stages`; fail with the last runtime seen."
    end, rt = time.monotonic() + timeout, None
    while time.monotonic() < end:
        rt = api.get_space_runtime(repo_id)
        if rt.stage in stages: return rt
        time.sleep(0.2)
    raise AssertionError(f"{repo_id} stuck at {rt.stage if rt else None}: {rt.raw if rt else None}")
