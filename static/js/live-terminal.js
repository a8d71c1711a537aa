// Terminals in a container: xterm.js over a websocket with binary frames both ways.
// Client frames: "0"+input, "1"+{"cols","rows"}, "2"+bytes consumed (flow control), "9" pong.
// Server frames: "0"+output, "1"+JSON info. Several terminals may be open at once.
(function () {
  "use strict";
  const ACK_EVERY = 32 * 1024;
  const enc = new TextEncoder();

  function frame(op, payload) {
    const bytes = typeof payload === "string" ? enc.encode(payload) : payload;
    const out = new Uint8Array(bytes.length + 1);
    out[0] = op.charCodeAt(0);
    out.set(bytes, 1);
    return out;
  }

  // The socket needs the page's token (docs/websockets.md); one about to expire is renewed
  // from the console first (same origin only).
  async function token(root) {
    if (Number(root.dataset.tokenExpires || 0) - Date.now() / 1000 < 30) {
      const r = await fetch(root.dataset.tokenUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (r.ok) {
        const fresh = await r.json();
        root.dataset.token = fresh.token;
        root.dataset.tokenExpires = fresh.expires;
      }
    }
    return root.dataset.token || "";
  }

  async function openTerminal(root) {
    const panes = root.querySelector("[data-terminal-panes]");
    const pane = document.createElement("div");
    pane.className = "terminal-pane";
    pane.innerHTML = '<div class="terminal-bar"><span class="terminal-status" data-terminal-status>Connecting…</span>' +
      '<button type="button" class="secondary outline small" data-terminal-close>Close</button></div><div class="terminal-screen"></div>';
    panes.appendChild(pane);
    const statusEl = pane.querySelector("[data-terminal-status]");
    const screen = pane.querySelector(".terminal-screen");
    const term = new Terminal({cursorBlink: true, scrollback: 5000, fontSize: 14,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"});
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    fit.fit();
    const params = new URLSearchParams({cols: term.cols, rows: term.rows,
      cmd: root.querySelector("[data-terminal-cmd]").value.trim(),
      user: root.querySelector("[data-terminal-user]").value.trim(),
      token: await token(root).catch(() => "")});
    const ws = new WebSocket(BerthLive.wsUrl(`/ws/containers/${root.dataset.container}/terminal/?${params}`));
    ws.binaryType = "arraybuffer";
    let consumed = 0, ended = false;
    const setStatus = (text, kind) => { statusEl.textContent = text; pane.dataset.state = kind || ""; };
    const send = (data) => { if (ws.readyState === 1) ws.send(data); };

    ws.onmessage = (ev) => {
      const data = new Uint8Array(ev.data);
      if (data[0] === 0x30) {
        const chunk = data.subarray(1);
        term.write(chunk, () => {
          consumed += chunk.length;
          if (consumed >= ACK_EVERY) { send(frame("2", String(consumed))); consumed = 0; }
        });
        return;
      }
      let info = {};
      try { info = JSON.parse(new TextDecoder().decode(data.subarray(1))); } catch (e) { return; }
      if (info.t === "ping") send(frame("9", ""));
      else if (info.t === "started") setStatus(`Connected: ${info.command.join(" ")} as ${info.user}`, "open");
      else if (info.t === "exit") { ended = true; setStatus(`The process exited (code ${info.code}).`, "ended"); }
      else if (info.t === "container") setStatus(`${statusEl.textContent} The container ${info.status === "removed" ? "was removed" : "stopped"}.`, "ended");
      else if (info.t === "error" || info.t === "refused") setStatus(info.message, "error");
      else if (info.t === "notice") setStatus(info.message, "warn");
    };
    ws.onclose = (ev) => {
      if (!ended && pane.dataset.state !== "error") setStatus(BerthLive.FINAL[ev.code] || `Disconnected (${ev.code}).`, "ended");
      term.options.disableStdin = true;
      pane.dataset.closed = "1";
    };
    term.onData((text) => send(frame("0", text)));
    term.onBinary((text) => send(frame("0", Uint8Array.from(text, (c) => c.charCodeAt(0) & 255))));
    term.onResize(({cols, rows}) => send(frame("1", JSON.stringify({cols, rows}))));
    const refit = () => { try { fit.fit(); } catch (e) { /* hidden */ } };
    window.addEventListener("resize", refit);
    pane.querySelector("[data-terminal-close]").addEventListener("click", () => {
      ws.close(1000); window.removeEventListener("resize", refit); term.dispose(); pane.remove();
    });
    term.focus();
    pane.term = term; pane.refit = refit;
    return pane;
  }

  function init() {
    document.querySelectorAll("[data-terminal]").forEach((root) => {
      root.querySelector("[data-terminal-open]").addEventListener("click", () => openTerminal(root));
    });
    window.addEventListener("beforeunload", () => {
      document.querySelectorAll(".terminal-pane").forEach((p) => p.term && p.term.dispose());
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  window.BerthTerminal = {openTerminal};
})();
