// The live log viewer: one container (detail page) or several merged (coloured prefixes).
// Protocol: docs/websockets.md. The DOM keeps at most MAX_DOM lines; the server keeps the rest.
(function () {
  "use strict";
  const MAX_DOM = 5000;

  function LogViewer(root) {
    const $ = (sel) => root.querySelector(sel);
    const out = $("[data-log-output]");
    const statusEl = $("[data-log-status]");
    const countEl = $("[data-search-count]");
    const sources = JSON.parse(root.dataset.sources);
    const merged = sources.length > 1;
    const opt = {timestamps: false, wrap: true, stdout: true, stderr: true, tail: 500, since: ""};
    let detached = false, searchId = 0, matches = [], matchIndex = -1, pattern = null, onlyMatching = false;
    let totalCount = 0, partial = false, truncated = false;

    const states = sources.map((src) => ({src, last: null, oldest: null, caughtUp: false, buffer: [],
      conn: null, more: false}));

    function setStatus(text, kind) { statusEl.textContent = text; statusEl.dataset.kind = kind || ""; }

    function readOptions() {
      root.querySelectorAll("[data-opt]").forEach((el) => {
        const key = el.dataset.opt;
        opt[key] = el.type === "checkbox" ? el.checked : el.value;
      });
      out.classList.toggle("nowrap", !opt.wrap);
      out.classList.toggle("no-ts", !opt.timestamps);
    }

    function tailValue() { return opt.tail === "all" ? null : parseInt(opt.tail, 10) || 500; }

    function openMessage(state, resuming) {
      const msg = {t: "open", tail: tailValue(), since: opt.since || "", stdout: opt.stdout, stderr: opt.stderr};
      if (resuming && state.last) msg.after = state.last;
      return JSON.stringify(msg);
    }

    function render(state, rec, focus) {
      const div = document.createElement("div");
      div.className = "ll " + (rec.stream || "stdout");
      if (merged) {
        const tag = document.createElement("span");
        tag.className = "src"; tag.style.color = state.src.colour; tag.textContent = state.src.name + " | ";
        div.appendChild(tag);
      }
      const ts = document.createElement("span");
      ts.className = "ts"; ts.textContent = (rec.time || "").replace("T", " ").slice(0, 23) + " ";
      div.appendChild(ts);
      const text = (rec.log || "").replace(/\n$/, "");
      const body = document.createElement("span");
      body.className = "msg";
      if (pattern && pattern.test(text)) { div.classList.add("hit"); }
      body.textContent = text;
      div.appendChild(body);
      div.dataset.time = rec.time || "";
      if (focus) div.classList.add("focus");
      return div;
    }

    function parse(body) {
      const recs = [];
      for (const line of body.split("\n")) {
        if (!line) continue;
        try { recs.push(JSON.parse(line)); } catch (e) { /* a torn line */ }
      }
      return recs;
    }

    function atBottom() { return out.scrollHeight - out.scrollTop - out.clientHeight < 40; }

    function append(nodes) {
      const stick = atBottom();
      const frag = document.createDocumentFragment();
      nodes.forEach((n) => frag.appendChild(n));
      out.appendChild(frag);
      let extra = out.childElementCount - MAX_DOM;
      while (extra-- > 0) out.firstElementChild.remove();
      if (stick) out.scrollTop = out.scrollHeight;
    }

    function prepend(nodes) {
      const frag = document.createDocumentFragment();
      nodes.forEach((n) => frag.appendChild(n));
      const height = out.scrollHeight;
      out.insertBefore(frag, out.firstChild);
      out.scrollTop += out.scrollHeight - height;
      let extra = out.childElementCount - MAX_DOM;
      if (extra > 0) detached = true;
      while (extra-- > 0) out.lastElementChild.remove();
    }

    function replace(nodes) {
      out.textContent = "";
      append(nodes);
    }

    function flushMerged() {
      if (!states.every((s) => s.caughtUp)) return;
      const all = [];
      states.forEach((s) => { s.buffer.forEach((r) => all.push([s, r])); s.buffer = []; });
      all.sort((a, b) => (a[1].time < b[1].time ? -1 : a[1].time > b[1].time ? 1 : 0));
      append(all.slice(-MAX_DOM).map(([s, r]) => render(s, r)));
    }

    function onLines(state, header, body, conn) {
      const recs = parse(body);
      const mode = header.mode;
      if (mode === "tail" || mode === "live") {
        state.last = [header.ino, header.end];
        if (state.oldest === null && mode === "tail") state.oldest = [header.ino, header.start];
        if (!state.caughtUp && merged) { state.buffer.push(...recs); }
        else if (!detached) append(recs.map((r) => render(state, r)));
      } else if (mode === "older") {
        state.oldest = [header.ino, header.start];
        state.more = header.more;
        prepend(recs.map((r) => render(state, r)));
      } else if (mode === "around") {
        detached = true;
        replace(recs.map((r, i) => render(state, r, i === header.focus)));
        const focus = out.querySelector(".focus");
        if (focus) focus.scrollIntoView({block: "center"});
        setStatus("Showing a match; live lines are paused.", "warn");
        root.querySelector("[data-live]").hidden = false;
      } else if (mode === "filter") {
        replace(recs.map((r) => render(state, r)));
      }
      conn.send(JSON.stringify({t: "ack", seq: header.seq}));
    }

    function onInfo(state, msg, conn) {
      switch (msg.t) {
        case "ping": conn.send('{"t":"pong"}'); break;
        case "begin": state.more = msg.more; state.oldest = null; break;
        case "live": state.caughtUp = true; if (merged) flushMerged(); else if (!detached) setStatus("Following live.", "ok"); break;
        case "state":
          if (msg.status === "removed") setStatus(`${state.src.name}: the container was removed.`, "final");
          else if (!msg.running) setStatus(`${state.src.name}: the container stopped (exit code ${msg.exit_code}); the view goes on when it starts again.`, "warn");
          else setStatus(merged ? "Following live." : "Following live: the container is running.", "ok");
          root.dataset.containerState = msg.status;
          break;
        case "gap": setStatus(msg.message, "warn"); break;
        case "oldest": state.more = false; setStatus("This is the start of the log.", ""); break;
        case "search":
          if (msg.id !== searchId) break;
          if (msg.error) { countEl.textContent = msg.error; matches = []; break; }
          // several sources (merged view): one list of [source, cursor], counts added up
          matches = matches.concat(msg.matches.map((c) => [state, c])); matchIndex = matches.length;
          totalCount += msg.count; partial = partial || msg.partial; truncated = truncated || msg.truncated;
          countEl.textContent = `${totalCount} match${totalCount === 1 ? "" : "es"}` + (partial ? " (search stopped early)" : "") + (truncated ? ` (the last ${matches.length} can be stepped through)` : "");
          root.dataset.matchCount = msg.count;
          break;
        case "filter": if (msg.error) countEl.textContent = msg.error; else if (msg.active) countEl.textContent = `${msg.count} matching line${msg.count === 1 ? "" : "s"}`; break;
        case "refused": case "error": setStatus(msg.message, "final"); break;
      }
    }

    function start(state) {
      state.conn = BerthLive.connect(`/ws/containers/${state.src.pk}/logs/`, {
        open: (ws, reconnecting) => { ws.send(openMessage(state, reconnecting)); if (!reconnecting) setStatus("Connected.", "ok"); },
        message: (ev) => {
          const data = ev.data;
          const nl = data.indexOf("\n");
          const head = JSON.parse(nl === -1 ? data : data.slice(0, nl));
          if (head.t === "lines") onLines(state, head, data.slice(nl + 1), state.conn);
          else onInfo(state, head, state.conn);
        },
        status: (text, kind) => setStatus(`${merged ? state.src.name + ": " : ""}${text}`, kind),
      });
    }

    function restart() {
      readOptions();
      detached = false;
      root.querySelector("[data-live]").hidden = true;
      out.textContent = "";
      states.forEach((s) => { s.last = null; s.oldest = null; s.caughtUp = false; s.buffer = [];
        if (s.conn) s.conn.send(openMessage(s, false)); });
    }

    function compilePattern(q, regex) {
      try { return q ? new RegExp(regex ? q : q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i") : null; }
      catch (e) { return null; }
    }

    function search() {
      const q = $("[data-search]").value;
      const regex = $("[data-search-regex]").checked;
      pattern = compilePattern(q, regex);
      out.querySelectorAll(".ll").forEach((div) => {
        const msg = div.querySelector(".msg");
        div.classList.toggle("hit", !!(pattern && msg && pattern.test(msg.textContent)));
      });
      searchId += 1; matches = []; matchIndex = -1; totalCount = 0; partial = false; truncated = false;
      if (!q) { countEl.textContent = ""; if (onlyMatching) setOnly(false); return; }
      states.forEach((s) => s.conn.send(JSON.stringify({t: "search", id: searchId, q, regex})));
      if (onlyMatching) states.forEach((s) => s.conn.send(JSON.stringify({t: "filter", q, regex})));
      countEl.textContent = "Searching…";
    }

    function step(delta) {
      if (!matches.length) return;
      matchIndex = (matchIndex + delta + matches.length) % matches.length;
      countEl.textContent = countEl.textContent.replace(/^(\d+ of )?/, `${matchIndex + 1} of `);
      const [state, cursor] = matches[matchIndex];
      state.conn.send(JSON.stringify({t: "around", at: cursor, n: 200}));
    }

    function setOnly(on) {
      onlyMatching = on;
      const q = $("[data-search]").value;
      const regex = $("[data-search-regex]").checked;
      if (on && q) states.forEach((s) => s.conn.send(JSON.stringify({t: "filter", q, regex})));
      else { states.forEach((s) => s.conn.send(JSON.stringify({t: "filter", q: ""}))); restart(); }
    }

    root.querySelectorAll("[data-opt]").forEach((el) => el.addEventListener("change", () => {
      if (["timestamps", "wrap"].includes(el.dataset.opt)) readOptions(); else restart();
    }));
    $("[data-search-form]").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
    $("[data-next]").addEventListener("click", () => step(1));
    $("[data-prev]").addEventListener("click", () => step(-1));
    $("[data-only]").addEventListener("change", (ev) => setOnly(ev.target.checked));
    $("[data-older]").addEventListener("click", () => {
      const s = states[0];
      if (s.oldest) s.conn.send(JSON.stringify({t: "more", before: s.oldest, n: 1000}));
    });
    $("[data-live]").addEventListener("click", restart);
    const download = $("[data-download]");
    if (download) download.addEventListener("click", () => {
      readOptions();
      const q = new URLSearchParams({timestamps: opt.timestamps ? "1" : "0", stdout: opt.stdout ? "1" : "0",
        stderr: opt.stderr ? "1" : "0", since: opt.since || ""});
      download.href = download.dataset.base + "?" + q.toString();
    });
    readOptions();
    out.textContent = "";
    states.forEach(start);
    root.logViewer = {states, restart};
  }

  function init() { document.querySelectorAll("[data-log-viewer]").forEach((el) => LogViewer(el)); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
