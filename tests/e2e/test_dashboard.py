"""The dashboard page in a real headless Chromium (Debian's /usr/bin/chromium), driven over the
DevTools protocol on a pipe (--remote-debugging-pipe: fds 3 and 4, NUL-separated JSON), so no
websocket library or npm package is needed.

- the page loads without console errors, uncaught exceptions or failed requests, and within a
  few refreshes shows the topics and the consumer group (with its lag) this test created;
- a screenshot is kept in build/test-artifacts/dashboard.png (and dashboard-disconnected.png);
- with the broker stopped, the page shows its "disconnected" state.
"""

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

from depot_harness import check, run_tests
from test_metrics import commit_at, create_topic, metrics_broker, produce

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACTS = os.path.normpath(os.path.join(HERE, "../../build/test-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Chromium:
    """A headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="depot-e2e-chromium-")
        cmd_r, cmd_w = os.pipe()  # we write commands, Chromium reads fd 3
        ev_r, ev_w = os.pipe()    # Chromium writes fd 4, we read
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--mute-audio", "--user-data-dir=" + self.profile, "--remote-debugging-pipe",
                "--window-size=1280,1000", "about:blank"]
        # bash puts the pipe ends on fds 3 and 4, where Chromium expects them.
        shell = 'exec "$@" 3<&%d 4>&%d' % (cmd_r, ev_w)
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(["bash", "-c", shell, "chromium"] + args,
                                     pass_fds=(cmd_r, ev_w), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        os.close(cmd_r)
        os.close(ev_w)
        self.wfd = cmd_w
        self.rfd = ev_r
        self.next_id = 0
        self.replies = {}
        self.events = queue.Queue()
        self.cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = [t for t in targets if t["type"] == "page"][0]
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(domain + ".enable", session=True)

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cv:
                    self.replies[-1] = None
                    self.cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                if "id" in m:
                    with self.cv:
                        self.replies[m["id"]] = m
                        self.cv.notify_all()
                else:
                    self.events.put(m)

    def call(self, method, session=False, timeout=30, **params):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        deadline = time.monotonic() + timeout
        with self.cv:
            while mid not in self.replies:
                check(-1 not in self.replies, "chromium went away during %s", method)
                left = deadline - time.monotonic()
                check(left > 0, "chromium: no answer to %s", method)
                self.cv.wait(left)
            m = self.replies.pop(mid)
        check("error" not in m, "%s failed: %r", method, m.get("error"))
        return m["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", session=True, expression=expr, returnByValue=True)
        check("exceptionDetails" not in r, "evaluate %s: %r", expr, r.get("exceptionDetails"))
        return r["result"].get("value")

    def wait_for(self, expr, timeout=20):
        deadline = time.monotonic() + timeout
        guarded = "(() => { try { return !!(%s); } catch (e) { return false; } })()" % expr
        while time.monotonic() < deadline:
            if self.eval(guarded):  # false while the navigation is still on about:blank
                return
            time.sleep(0.2)
        raise AssertionError("page never satisfied: %s (body: %s)" %
                             (expr, self.eval("document.body.innerText")[:800]))

    def drain_errors(self):
        """Console errors, uncaught exceptions, error log entries and failed loads so far."""
        errs = []
        while True:
            try:
                e = self.events.get_nowait()
            except queue.Empty:
                return errs
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                errs.append("exception: %s" % p["exceptionDetails"].get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errs.append("console.%s: %r" % (p["type"], p.get("args")))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                errs.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url", "")))
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                errs.append("load failed: %s" % p.get("errorText"))

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except AssertionError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.wfd)
        os.close(self.rfd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def test_dashboard_in_chromium():
    if not os.path.exists(CHROMIUM):
        print("  SKIP test_dashboard_in_chromium: %s not installed "
              "(scripts/install-deps --test installs Debian's chromium)" % CHROMIUM)
        return
    with metrics_broker() as b:
        create_topic(b.bootstrap, "dash.line1", 3)
        create_topic(b.bootstrap, "dash.line2", 1)
        produce(b.bootstrap, "dash.line1", 90, 200)
        produce(b.bootstrap, "dash.line2", 40, 50)
        commit_at(b.bootstrap, "dash.readers", "dash.line2", 25)
        c = Chromium()
        try:
            c.call("Page.navigate", session=True, url=b.metrics_url + "/")
            c.wait_for("document.getElementById('status').textContent === 'connected'")
            c.wait_for("!!document.querySelector('tr[data-topic=\"dash.line1\"]')"
                       " && !!document.querySelector('tr[data-group=\"dash.readers\"]')")
            row = c.eval("document.querySelector('tr[data-topic=\"dash.line1\"]').innerText")
            check("dash.line1" in row and "90" in row and "\t3\t" in row, "topic row %r", row)
            check(c.eval("!!document.querySelector('tr[data-topic=\"dash.line2\"]')"), "line2")
            check(not c.eval("!!document.querySelector('tr[data-topic=\"__consumer_offsets\"]')"),
                  "internal topics are not listed")
            grow = c.eval("document.querySelector('tr[data-group=\"dash.readers\"]').innerText")
            check("dash.readers" in grow and "\t15\t" in grow, "group row (lag 15) %r", grow)
            check(c.eval("document.getElementById('gaugePct').textContent") != "–", "gauge")
            time.sleep(3.5)  # one more refresh cycle, still clean
            errs = c.drain_errors()
            check(not errs, "errors while connected: %s", errs)
            shot = c.screenshot(os.path.join(ARTIFACTS, "dashboard.png"))
            check(os.path.getsize(shot) > 10000, "screenshot %s too small", shot)
            b.stop()
            c.wait_for("document.getElementById('status').textContent === 'disconnected'"
                       " && document.body.classList.contains('disconnected')", timeout=15)
            banner = c.eval("getComputedStyle(document.getElementById('banner')).display")
            check(banner == "block", "banner display %r", banner)
            c.screenshot(os.path.join(ARTIFACTS, "dashboard-disconnected.png"))
            print("  screenshots in %s" % ARTIFACTS)
        finally:
            c.close()


if __name__ == "__main__":
    run_tests(globals())
