#!/usr/bin/python3
"""cdp.py -- drive headless Chromium over the DevTools protocol for the ops page test and the
docs screenshot (tests/integration/test_ops_page.sh, docs/observability.md).

    cdp.py URL [--key-file F] [--wait JS]... [--click-job ID --wait JS]... [--eval JS]
           [--screenshot OUT.png] [--timeout S]

Starts `chromium --headless` with a throw-away profile, opens URL, types the credential from
--key-file into the page's login form (as a user would: it ends up in sessionStorage and the
Authorization header, never in the URL), then runs the steps in order: --wait JS polls until
the expression is truthy (fails after --timeout), --click-job ID clicks that job's row,
--eval JS prints the expression's value as JSON. --screenshot saves a PNG at the end.
Exit 0 when every step passed, 1 when one failed (the reason on stderr), 77 when Chromium
cannot run here at all (the caller skips plainly).

Why the DevTools protocol and not --dump-dom: the page needs a credential typed in and time to
poll its API, and the test must read the live DOM after a click.
"""
import argparse, base64, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

try:
    import websocket  # python3-websocket
except ImportError:
    print("cdp.py: python3-websocket is not installed (make deps)", file=sys.stderr)
    sys.exit(77)


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.n = 0

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if self.js(expr):
                    return True
            except RuntimeError:
                pass
            time.sleep(0.25)
        return False


def chromium_bin():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def start_chromium(profile, width, height):
    exe = chromium_bin()
    if not exe:
        print("cdp.py: chromium is not installed (make deps)", file=sys.stderr)
        sys.exit(77)
    args = [exe, "--headless=new", "--remote-debugging-port=0", "--user-data-dir=" + profile,
            "--no-first-run", "--no-default-browser-check", "--disable-gpu",
            "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
            "--window-size=%d,%d" % (width, height), "about:blank"]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(profile + "/chromium.log", "w"))
    port_file = os.path.join(profile, "DevToolsActivePort")
    end = time.time() + 30
    while time.time() < end:
        if proc.poll() is not None:
            break
        if os.path.exists(port_file):
            with open(port_file) as f:
                lines = f.read().split()
            if lines:
                return proc, int(lines[0])
        time.sleep(0.1)
    proc.kill()
    log = open(profile + "/chromium.log").read()[-800:]
    print("cdp.py: chromium did not start: " + log, file=sys.stderr)
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--key-file")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--screenshot")
    ap.add_argument("--size", default="1440x1000")
    ap.add_argument("--wait", action="append", dest="steps", type=lambda v: ("wait", v))
    ap.add_argument("--click-job", action="append", dest="steps", type=lambda v: ("click", v))
    ap.add_argument("--eval", action="append", dest="steps", type=lambda v: ("eval", v))
    a = ap.parse_args()
    width, height = (int(x) for x in a.size.split("x"))
    profile = tempfile.mkdtemp(prefix="phx-cdp-")
    proc = None
    try:
        proc, port = start_chromium(profile, width, height)
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
        page = Page(next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=a.url)
        if not page.wait("document.readyState === 'complete' && !!document.getElementById('login')", a.timeout):
            print("cdp.py: the page did not load: " + str(page.js("document.documentElement.outerHTML.slice(0, 300)")), file=sys.stderr)
            return 1
        if a.key_file:
            key = open(a.key_file).read().strip()
            page.js("document.getElementById('key').value = %s; document.getElementById('login').requestSubmit(); true" % json.dumps(key))
        for kind, v in a.steps or []:
            if kind == "wait":
                if not page.wait(v, a.timeout):
                    print("cdp.py: timed out waiting for: " + v, file=sys.stderr)
                    print("cdp.py: page text: " + str(page.js("document.body.innerText.slice(0, 1500)")), file=sys.stderr)
                    return 1
            elif kind == "click":
                if not page.js("(() => { const r = document.querySelector('#jobs tr[data-job=%s]'); if (r) r.click(); return !!r; })()" % json.dumps(v)):
                    print("cdp.py: no row for job " + v, file=sys.stderr)
                    return 1
            else:
                print(json.dumps(page.js(v)))
        if a.screenshot:
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        return 0
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
