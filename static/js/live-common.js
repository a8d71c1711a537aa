// Shared by Berth's live pages: websocket URLs, reconnecting, close-code messages.
(function () {
  "use strict";
  const FINAL = {4400: "The server refused a message.", 4401: "You are signed out: sign in again.",
    4403: "You may not do this here.", 4404: "No such container (or you may not see it).",
    4409: "The container is not running.", 4503: "The engine could not do it."};

  function wsUrl(path) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + path;
  }

  // Opens `path`, calls handlers.open(ws, reconnecting), handlers.message(ev), handlers.status(text, kind).
  // Reconnects with a back-off unless the close code says retrying is pointless.
  function connect(path, handlers, options) {
    let attempt = 0, stopped = false, ws = null;
    function open() {
      ws = new WebSocket(wsUrl(typeof path === "function" ? path() : path));
      if (options && options.binary) ws.binaryType = "arraybuffer";
      ws.onopen = () => { handlers.open(ws, attempt > 0); attempt = 0; };
      ws.onmessage = (ev) => handlers.message(ev, ws);
      ws.onclose = (ev) => {
        if (stopped) return;
        if (FINAL[ev.code] || ev.code === 1000 || (options && options.once)) {
          handlers.status(FINAL[ev.code] || "Closed.", "final", ev.code);
          if (handlers.closed) handlers.closed(ev.code);
          return;
        }
        attempt += 1;
        const delay = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
        handlers.status(`Disconnected; reconnecting in ${Math.round(delay / 1000)} s…`, "warn", ev.code);
        setTimeout(open, delay);
      };
    }
    open();
    return {
      send: (data) => { if (ws && ws.readyState === 1) ws.send(data); },
      close: () => { stopped = true; if (ws) ws.close(1000); },
      get socket() { return ws; },
    };
  }

  window.BerthLive = {wsUrl, connect, FINAL};
})();
