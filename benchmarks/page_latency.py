"""How long a Run feels in the real page: from the click on Run until the page stops changing.

The app is served in threads of this process and driven by Debian's Chromium (headless, through
Playwright) at 1366x768, a classroom laptop. After `page.goto` the page is left alone until it has
been quiet (no DOM mutation, no Gradio progress indicator, no server call in flight) for 1.5 s:
the page fills its outputs on arrival. Then one or more untimed warm Runs, then N timed Runs with
the page's own controls (the default mode changes none; "compare" ticks `#compare input` first,
and is reported "not available" where the page has no such box).

Everything is on one clock, the page's epoch milliseconds (the server's `time.time()` stamps are
moved onto it by the offset between `Date.now()` and the page's clock, read at the click):
  click   `performance.timeOrigin + performance.now()` read in the page right before
          `document.querySelector('#run').click()`, in the same script;
  page    a MutationObserver on `document.body` (and on every shadow root) stamps every DOM
          mutation, and a wrapped `ReadableStreamDefaultReader.read` stamps every chunk of a
          fetched stream (the SSE stream) as it reaches the page's scripts. Mutations inside
          Gradio's progress indicators (the ticking timer, the eta bar, the spinner, the
          screen-reader status line) and in toasts (a slow Run's warning, fading out on its own
          clock) are counted apart: they say nothing about outputs. The page has stopped
          changing at the last other mutation before a quiet spell of 2 s with no progress
          indicator showing (elements .pending / .generating / .progress-text / .meta-text /
          .eta-bar / .progress-level rendered) and no server call in flight;
  server  `gradio.blocks.Blocks.process_api` wrapped to stamp `time.time()` at its start and end
          (preprocess, the handler, postprocess: images, audio and files written to the cache);
          the calls that start after the click are spanned, first start to last end.
The first change after the server's end is when the response has arrived and Gradio starts
applying it: the arrival of the stream's last chunk before the first mutation stamped after the
server's end (or that stamp, where no chunk is seen). Not the stamp itself: observer callbacks
run only once the script changing the DOM yields, and Gradio parses the response and applies
every output (Plotly included) in one long task, so the stamp comes at that task's end and
would file the page's work as transfer; the stamp is reported too. The total (last change -
click) splits exactly into
  queue + transfer  (server start - click) + (first change after server end - server end),
  server            server end - server start,
  drawing           last change - first change after server end,
and the bytes the browser received after the click (Chrome DevTools Network.dataReceived, body
bytes as delivered to the page: the SSE stream, every /file= image, audio or video fetch, plots
inside the stream) are summed per content type, so payload cuts can be judged. Drawing is broken
down by the output whose last change comes latest, and by main-thread long tasks (>= 50 ms).
The CPU time the server's process and the browser used from the click to the quiet spell is
reported too: here they share the same cores, so a busy page slows the server.
Canvas paints make no DOM mutation: a plot or waveform that finishes on a canvas after its last
DOM change is not seen (Plotly draws SVG; mutations in shadow roots are observed).

The same settings give byte-identical outputs (PGD's start is seeded), which the page does not
redraw and whose files (named by content hash) the browser has cached: repeated Runs time the
server and the stream only. So by default a new seed is typed before each Run (untimed) and
every Run draws new outputs, as after a person changes a setting; `--same-seed` repeats them.

Bars: a warm default Run <= 1500 ms, a compare Run <= 2500 ms, on the 2-core CPU.

    python benchmarks/page_latency.py [--runs 5] [--mode default|compare|both] [--port 7895] [--same-seed]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
BARS_MS = {"default": 1500, "compare": 2500}
ARRIVAL_QUIET_S = 1.5
RUN_QUIET_S = 2.0
PARTS = ("queue_transfer_ms", "server_ms", "drawing_ms")
STREAM_ONLY = {"text/event-stream", "application/json"}  # a Run that fetched no file: nothing new to show

# Installed in the page before any of its scripts: stamps every DOM mutation (epoch ms), apart
# from Gradio's progress indicators, and every long task; says whether a progress indicator shows.
OBSERVER_JS = r"""
(() => {
  if (window.__latency) return;
  const ASIDE = '.progress-text, .meta-text, .meta-text-center, .eta-bar, .progress-level, .sr-only, ' +
                '[data-testid="status-tracker"] svg, .toast-wrap';  // progress indicators, toasts
  const PROGRESS = '.pending, .generating, .progress-text, .meta-text, .meta-text-center, .eta-bar, .progress-level';
  const now = () => performance.timeOrigin + performance.now();
  const names = new WeakMap();
  const where = (element) => {  // the output a mutation belongs to: its block's elem_id, else its label
    let node = element;
    while (node) {
      const block = node.closest ? node.closest('.block') : null;
      if (block) {
        if (!names.has(block)) {
          const label = block.querySelector('[data-testid="block-info"], [data-testid="block-label"], label');
          const name = (block.id && !block.id.startsWith('component-')) ? block.id
            : (label && label.textContent.trim()) ? label.textContent.trim().slice(0, 40) : (block.id || 'block');
          if (name !== 'block') names.set(block, name);
          return name;
        }
        return names.get(block);
      }
      const root = node.getRootNode ? node.getRootNode() : null;
      node = root && root.host ? root.host : null;  // out of a shadow root, to its host
    }
    return 'page';
  };
  const state = window.__latency = {
    mutations: [], last: 0, aside: 0, longTasks: [], chunks: [],
    progress: () => [...document.querySelectorAll(PROGRESS)].filter((e) => e.getClientRects().length > 0).length,
  };
  const kinds = new WeakMap();  // element -> its output's name, or null inside an indicator (kept cheap:
  const record = (list) => {    // the callback runs inside the page's own drawing tasks)
    const t = now();
    for (const m of list) {
      const element = m.target.nodeType === 1 ? m.target : m.target.parentElement;
      if (!element) continue;
      let kind = kinds.get(element);
      if (kind === undefined) {
        kind = element.closest(ASIDE) ? null : where(element);
        kinds.set(element, kind);
      }
      if (kind === null) { state.aside += 1; continue; }
      state.mutations.push([t, kind]);
      state.last = t;
    }
  };
  const observer = new MutationObserver(record);
  const options = {subtree: true, childList: true, attributes: true, characterData: true};
  const attachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attachShadow.call(this, init);
    observer.observe(root, options);
    return root;
  };
  const read = ReadableStreamDefaultReader.prototype.read;  // when response bytes reach page scripts (the SSE stream)
  ReadableStreamDefaultReader.prototype.read = function () {
    return read.call(this).then((chunk) => {
      if (chunk && !chunk.done && chunk.value) state.chunks.push([now(), chunk.value.byteLength || 0]);
      return chunk;
    });
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) state.longTasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (error) { /* no long-task timing in this browser */ }
  const start = () => observer.observe(document.body, options);
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
})();
"""

CLICK_JS = """() => {
  const state = window.__latency;
  state.mutations = []; state.last = 0; state.longTasks = []; state.chunks = [];
  const button = document.querySelector('#run');
  if (!button) return null;
  const t = performance.timeOrigin + performance.now();
  button.click();
  return {click: t, wall: Date.now()};
}"""

STATE_JS = """([since, quiet]) => {  // progress indicators are looked for only once the page is quiet
  const state = window.__latency, now = performance.timeOrigin + performance.now();
  return {now, last: state.last, progress: now - Math.max(state.last, since) >= quiet ? state.progress() : -1};
}"""

SEED_LABEL = re.compile(r"^Seed")
SUMMARY_JS = """() => { const e = document.querySelector('#summary'); return e ? e.innerText.trim() : null; }"""


class ServerClock:
    """`Blocks.process_api` wrapped: a record per call, {start, end} in epoch seconds, the handler's
    name and (kept for `payload`, sized only after the Run) its outputs and their components."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.active = 0
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        """Wrap `process_api` (once); do it before the app is launched."""
        if self._installed:
            return
        from gradio.blocks import Blocks

        original = Blocks.process_api
        clock = self

        @functools.wraps(original)
        async def process_api(blocks, block_fn, *args, **kwargs):
            record = {"start": time.time(), "end": None, "blocks": blocks, "fn": block_fn, "result": None}
            with clock._lock:
                clock.calls.append(record)
                clock.active += 1
            try:
                record["result"] = await original(blocks, block_fn, *args, **kwargs)
                return record["result"]
            finally:
                record["end"] = time.time()
                with clock._lock:
                    clock.active -= 1

        Blocks.process_api = process_api
        self._original, self._installed = original, True

    def uninstall(self) -> None:
        """Put `process_api` back and forget the calls."""
        if self._installed:
            from gradio.blocks import Blocks

            Blocks.process_api = self._original
            self._installed = False
        self.calls.clear()


def _function(record: dict):
    fn = record["fn"]
    return record["blocks"].fns[fn] if isinstance(fn, int) else fn


def handler_name(record: dict) -> str:
    try:
        function = _function(record)
        return getattr(function.fn, "__name__", None) or str(getattr(function, "name", "?"))
    except Exception:  # naming is a nicety; never break a measurement over it
        return "?"


def payload(record: dict) -> dict[str, int]:
    """Bytes of JSON each output of a call puts into the SSE stream (file outputs: only their
    reference; the browser fetches the file itself), largest first."""
    data = (record.get("result") or {}).get("data") or []
    try:
        names = [getattr(c, "elem_id", None) or getattr(c, "label", None) or type(c).__name__
                 for c in _function(record).outputs]
    except Exception:
        names = []
    sizes: dict[str, int] = {}
    for index, value in enumerate(data):
        name = str(names[index] if index < len(names) else index)[:40]
        sizes[name] = sizes.get(name, 0) + len(json.dumps(value, default=str))
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


CLOCK = ServerClock()


class Received:
    """The bytes the page receives, per request, from Chrome's DevTools network events: counted
    between `start()` and `stop()`, per content type."""

    def __init__(self, page) -> None:
        self.types: dict[str, str] = {}
        self.counting = False
        self.bytes: dict[str, int] = {}
        self.requests: set[str] = set()
        session = page.context.new_cdp_session(page)
        session.on("Network.responseReceived", self._response)
        session.on("Network.dataReceived", self._data)
        session.send("Network.enable")
        self.session = session

    def _response(self, event: dict) -> None:
        response = event["response"]
        kind = (response.get("mimeType") or "?").split(";")[0]
        if "/file=" in response.get("url", "") and kind in ("application/octet-stream", "?"):
            kind = "file: " + Path(response["url"].split("?")[0]).suffix
        self.types[event["requestId"]] = kind

    def _data(self, event: dict) -> None:
        if self.counting:
            kind = self.types.get(event["requestId"], "?")
            self.bytes[kind] = self.bytes.get(kind, 0) + int(event.get("dataLength", 0))
            self.requests.add(event["requestId"])

    def start(self) -> None:
        self.bytes, self.requests, self.counting = {}, set(), True

    def stop(self) -> dict[str, int]:
        self.counting = False
        return dict(sorted(self.bytes.items(), key=lambda item: -item[1]))


_RECEIVED: dict[int, Received] = {}


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by this process (the server's threads, and the
    benchmark's own polling) and by its descendants (Playwright's driver and the browser);
    empty where /proc is missing. Both share the machine's cores during a Run."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        parents, used = {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry.name)] = int(fields[1])
                used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        me, browser = os.getpid(), 0.0
        for pid in used:
            ancestor = parents.get(pid)
            while ancestor and ancestor != me:
                ancestor = parents.get(ancestor)
            if ancestor == me and pid != me:
                browser += used[pid]
        return {"server": used.get(me, 0.0), "browser": browser}
    except (OSError, ValueError):
        return {}


def serve(port: int | None = None, clock: ServerClock = CLOCK):
    """The app served in threads of this process (warm: a background warm-up run starts), with
    `process_api` timed. Returns the Blocks: `demo.local_url`, `demo.close()`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    clock.install()
    from avdemo.lab.ui import build_app, launch

    demo = build_app()
    launch(demo, warm=True, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return demo


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_quiet(page, quiet_s: float, since: float = 0.0, timeout_s: float = 180.0, clock: ServerClock = CLOCK) -> dict:
    """Until the page has made no (non-indicator) mutation for `quiet_s`, counted from `since`
    (epoch ms) at the earliest, shows no progress indicator and has no server call in flight.
    Returns the page's last state ({now, last, progress})."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(STATE_JS, [since, quiet_s * 1000])
        if (state["now"] - max(state["last"], since) >= quiet_s * 1000 and state["progress"] == 0
                and clock.active == 0):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page did not settle within {timeout_s:.0f} s: {state}, "
                               f"{clock.active} server call(s) in flight")
        page.wait_for_timeout(100)


def open_page(browser, url: str, timeout_s: float = 180.0):
    """A fresh 1366x768 page on `url`, observed from its first script, left until it has settled
    (it fills its outputs on arrival)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(OBSERVER_JS)
    page = context.new_page()
    _RECEIVED[id(page)] = Received(page)
    page.goto(url, timeout=timeout_s * 1000)
    page.wait_for_selector("#run", timeout=timeout_s * 1000)
    wait_quiet(page, ARRIVAL_QUIET_S, timeout_s=timeout_s)
    return page


def set_compare(page, on: bool = True, timeout_s: float = 60.0) -> bool:
    """Tick (or untick) the compare box; False where the page has none."""
    box = page.locator("#compare input")
    if box.count() == 0:
        return False
    if box.first.is_checked() != on:
        box.first.click()
        wait_quiet(page, ARRIVAL_QUIET_S, timeout_s=timeout_s)
    return True


def _seed_box(page):
    box = page.locator("#seed input")
    return box if box.count() else page.get_by_label(SEED_LABEL)


def set_seed(page, seed: int, timeout_s: float = 60.0) -> bool:
    """Type `seed` into the Seed control; False where the page has none. A folded accordion
    hides it (or renders nothing yet), so accordions are opened in turn until the control shows,
    and folded again after (the value stays with the page)."""
    def shown(box) -> bool:
        return box.count() > 0 and box.first.is_visible()

    box, opened = _seed_box(page), None
    if not shown(box):
        for label in page.locator(".gr-accordion > button.label-wrap").all():
            label.click()
            wait_quiet(page, 0.3, timeout_s=timeout_s)
            box = _seed_box(page)
            if shown(box):
                opened = label
                break
            label.click()  # not in this one: as it was
            wait_quiet(page, 0.3, timeout_s=timeout_s)
    if not shown(box):
        return False
    box.first.fill(str(seed))
    box.first.dispatch_event("change")
    box.first.blur()
    if opened is not None:
        opened.click()
    wait_quiet(page, ARRIVAL_QUIET_S, timeout_s=timeout_s)
    return True


def measure_run(page, clock: ServerClock = CLOCK, timeout_s: float = 180.0, seed: int | None = None) -> dict:
    """Click Run once and time it (see the module's docstring). Returns epoch-ms stamps and the
    parts in ms: total_ms = queue_transfer_ms + server_ms + drawing_ms, plus bytes received,
    what drawing waited for, and the summary's text before and after. With `seed`, the Seed
    control is set first (untimed): the same settings give byte-identical outputs, which the
    page does not redraw (and whose files the browser has cached), so only a new seed times a
    full redraw."""
    if seed is not None and not set_seed(page, seed, timeout_s):
        raise RuntimeError("the page has no Seed control")
    received = _RECEIVED[id(page)]
    for call in clock.calls:
        call["result"] = None  # outputs of calls no Run measures (arrival, controls): let them go
    summary_before = page.evaluate(SUMMARY_JS)  # also delivers any network events still queued
    first_call = len(clock.calls)
    received.start()
    cpu_before = cpu_seconds()
    clicked = page.evaluate(CLICK_JS)
    if clicked is None:
        received.stop()
        raise RuntimeError("the page has no #run button")
    click = clicked["click"]
    wait_quiet(page, RUN_QUIET_S, since=click, timeout_s=timeout_s, clock=clock)
    cpu_after = cpu_seconds()
    seen = page.evaluate("() => ({mutations: window.__latency.mutations, longTasks: window.__latency.longTasks, "
                         "chunks: window.__latency.chunks})")
    summary_after = page.evaluate(SUMMARY_JS)
    by_type = received.stop()
    calls = [call for call in clock.calls[first_call:] if call["end"] is not None]
    if not calls:
        raise RuntimeError("Run reached no server handler (is the button wired, or did the page raise?)")
    # The page's clock (timeOrigin + now) runs some ms off the wall clock (Date.now, time.time):
    # the server's stamps are moved onto the page's clock by the offset read at the click.
    skew = clicked["wall"] - click
    server_start = min(c["start"] for c in calls) * 1000 - skew
    server_end = max(c["end"] for c in calls) * 1000 - skew
    after = [m for m in seen["mutations"] if m[0] >= server_end]
    stamped = after[0][0] if after else server_end  # the first mutation stamped after the handler ended
    # The response reached the page's scripts with the stream's last bytes before that stamp: from
    # there on the page parses and applies it, in scripts whose mutations are stamped only when
    # they yield (often one long task), so that is where the page starts changing the outputs.
    arrived = max((t for t, _ in seen["chunks"] if server_end <= t <= stamped), default=None)
    first = stamped if arrived is None else arrived
    last = max(after[-1][0] if after else server_end, server_end)
    parts = {"queue_transfer_ms": (server_start - click) + (first - server_end), "server_ms": server_end - server_start,
             "drawing_ms": last - first}
    finishing: dict[str, float] = {}
    for t, name in after:
        finishing[name] = t - first
    busy = sum(max(0.0, min(start + duration, last) - max(start, first)) for start, duration in seen["longTasks"])
    sizes: dict[str, int] = {}
    for call in calls:
        for name, size in payload(call).items():
            sizes[name] = sizes.get(name, 0) + size
        call["result"] = None  # sized: let the outputs go
    return {
        "click": click, "clock_skew_ms": skew, "server_start": server_start, "server_end": server_end,
        "first_change": first, "last_change": last, "total_ms": last - click, **parts,
        "queue_ms": server_start - click, "transfer_ms": first - server_end, "response_arrived": arrived,
        "first_mutation": stamped, "first_mutation_after_first_change_ms": stamped - first,
        "handlers": [handler_name(c) for c in calls],
        "calls_ms": [(handler_name(c), c["start"] * 1000 - skew - click, c["end"] * 1000 - skew - click)
                     for c in calls],
        "drew": bool(after), "mutations": len(seen["mutations"]),
        "last_changes_ms": dict(sorted(finishing.items(), key=lambda item: -item[1])[:5]),
        "long_tasks_in_drawing_ms": busy,
        "stream_chunks_while_serving": sum(click <= t < server_end for t, _ in seen["chunks"]),  # progress messages
        # CPU used from the click to the end of the quiet spell, by the server's process and the browser's
        "cpu_ms": {key: (cpu_after[key] - cpu_before[key]) * 1000 for key in cpu_after if key in cpu_before},
        "bytes": sum(by_type.values()), "bytes_by_type": by_type, "requests": len(received.requests),
        "stream_payload": dict(sorted(sizes.items(), key=lambda item: -item[1])),
        "summary_before": summary_before, "summary_after": summary_after,
    }


def measure_mode(page, mode: str, runs: int, warm: int = 1, timeout_s: float = 180.0, seeds=None) -> dict:
    """`warm` untimed Runs then `runs` timed ones in `mode` ("default": the page's controls as
    they are; "compare": the compare box ticked). {"available": False} where compare is missing.
    `seeds`, an iterator, gives each Run a new seed (see `measure_run`)."""
    if not set_compare(page, mode == "compare") and mode == "compare":
        return {"mode": mode, "available": False}
    seed = (lambda: next(seeds)) if seeds is not None else (lambda: None)
    for _ in range(warm):
        measure_run(page, timeout_s=timeout_s, seed=seed())
    timed = [measure_run(page, timeout_s=timeout_s, seed=seed()) for _ in range(runs)]
    keys = ("total_ms", *PARTS, "bytes")
    return {"mode": mode, "available": True, "runs": timed,
            "values": {key: [run[key] for run in timed] for key in keys},
            "median": {key: statistics.median(run[key] for run in timed) for key in keys}}


def _table(results: list[dict]) -> str:
    lines = [f"{'mode':<8} {'runs':>4} {'total':>7} {'server':>7} {'queue+tx':>9} {'drawing':>8} {'bar':>6}  "
             f"{'met':<4} {'received':>10}   (ms, medians)"]
    for result in results:
        if not result["available"]:
            lines.append(f"{result['mode']:<8} compare mode not available (the page has no #compare box)")
            continue
        m, bar = result["median"], BARS_MS[result["mode"]]
        lines.append(f"{result['mode']:<8} {len(result['runs']):>4} {m['total_ms']:>7.0f} {m['server_ms']:>7.0f} "
                     f"{m['queue_transfer_ms']:>9.0f} {m['drawing_ms']:>8.0f} {bar:>6}  "
                     f"{'yes' if m['total_ms'] <= bar else 'NO':<4} {m['bytes'] / 1024:>8.0f} KiB")
    return "\n".join(lines)


def _details(result: dict) -> str:
    if not result["available"]:
        return ""
    runs, values = result["runs"], result["values"]
    median = lambda key: statistics.median(run[key] for run in runs)  # noqa: E731
    lines = [f"{result['mode']}: every timed run (ms)"]
    for key in ("total_ms", *PARTS):
        lines.append(f"  {key:<18} " + " ".join(f"{v:7.0f}" for v in values[key]))
    arrivals = sum(run["response_arrived"] is not None for run in runs)
    how = "seen in the stream" if arrivals == len(runs) else f"{len(runs) - arrivals} Run(s) by first mutation"
    lines.append(f"  queue+transfer = queue {median('queue_ms'):.0f} (click to handler start) + transfer "
                 f"{median('transfer_ms'):.0f} (handler end to the response in the page: "
                 f"{how}); "
                 f"first mutation stamped {median('first_mutation_after_first_change_ms'):.0f} after the response "
                 f"arrived (the page's script parsing and applying it) (medians)")
    last = runs[-1]
    lines.append("  server calls, ms from the click (last run): " +
                 "; ".join(f"{name} {start:.0f}-{end:.0f}" for name, start, end in last["calls_ms"]) +
                 f"; page clock behind Date.now by "
                 f"{last['clock_skew_ms']:+.1f} ms; main-thread long tasks during drawing "
                 f"{median('long_tasks_in_drawing_ms'):.0f} ms (median)")
    if last["cpu_ms"]:
        cpu = {key: statistics.median(run["cpu_ms"][key] for run in runs) for key in last["cpu_ms"]}
        lines.append(f"  CPU from click to quiet (median): server process {cpu['server']:.0f} ms, browser "
                     f"{cpu['browser']:.0f} ms (they share the cores here); {last['stream_chunks_while_serving']} "
                     f"stream chunks (progress) while serving (last run)")
    lines.append("  latest to finish drawing (ms after the first change, last run): " +
                 "; ".join(f"{name} {t:.0f}" for name, t in last["last_changes_ms"].items()))
    lines.append(f"  received per Run (last run, {last['requests']} responses): " +
                 "; ".join(f"{kind} {size / 1024:.1f} KiB" for kind, size in last["bytes_by_type"].items()))
    lines.append("  in the stream, per output (JSON, last run): " +
                 "; ".join(f"{name} {size / 1024:.1f} KiB" for name, size in list(last["stream_payload"].items())[:6]))
    if all(run["summary_before"] == run["summary_after"] and set(run["bytes_by_type"]) <= STREAM_ONLY for run in runs):
        lines.append("  note: the Runs repeated the outputs already shown (same settings, same result): the page "
                     "had next to nothing to redraw and its files were cached; without --same-seed every Run draws new outputs")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed Runs per mode (after one untimed warm Run)")
    parser.add_argument("--mode", choices=("default", "compare", "both"), default="both")
    parser.add_argument("--port", type=int, default=7895)
    parser.add_argument("--timeout", type=float, default=180, help="seconds a Run (or the arrival) may take")
    parser.add_argument("--same-seed", action="store_true", help="repeat the page's settings exactly: the page has "
                        "(nearly) nothing to redraw; by default every Run gets a new seed (1, 2, ...) and draws new "
                        "outputs, as after a person changes a setting")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Chromium at {CHROMIUM}")

    from playwright.sync_api import sync_playwright

    cache = tempfile.mkdtemp(prefix="page-latency-")
    os.environ.setdefault("GRADIO_TEMP_DIR", cache)
    started = time.perf_counter()
    demo = serve(args.port)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = open_page(browser, demo.local_url, timeout_s=args.timeout)
            print(f"page settled {time.perf_counter() - started:.1f} s after start-up, on its arrival example")
            modes = ("default", "compare") if args.mode == "both" else (args.mode,)
            seeds = None if args.same_seed else itertools.count(1)
            results = [measure_mode(page, mode, args.runs, timeout_s=args.timeout, seeds=seeds) for mode in modes]
            browser.close()
    finally:
        demo.close()
        shutil.rmtree(cache, ignore_errors=True)
    print()
    print(_table(results))
    for result in results:
        if result["available"]:
            print(_details(result))


if __name__ == "__main__":
    main()
