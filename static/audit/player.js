/* Berth's asciicast v2 player: a tiny terminal (text, cursor moves, erases; colours
 * are dropped) drawn into a <pre>, replayed with the recorded timing.
 * Written for Berth; no dependencies. */
(function () {
  "use strict";

  function Screen(width, height) {
    this.scrollback = [];
    this.resize(width, height);
    this.x = 0; this.y = 0;
  }
  Screen.prototype.blank = function () { return new Array(this.width).fill(" "); };
  Screen.prototype.resize = function (width, height) {
    var old = this.rows || [];
    this.width = Math.max(1, width); this.height = Math.max(1, height);
    this.rows = [];
    for (var i = 0; i < this.height; i++) {
      var row = this.blank();
      if (old[i]) { for (var j = 0; j < Math.min(old[i].length, this.width); j++) row[j] = old[i][j]; }
      this.rows.push(row);
    }
    this.x = Math.min(this.x || 0, this.width - 1); this.y = Math.min(this.y || 0, this.height - 1);
  };
  Screen.prototype.lineFeed = function () {
    this.y++;
    if (this.y >= this.height) {
      this.scrollback.push(this.rows.shift().join("").replace(/\s+$/, ""));
      if (this.scrollback.length > 5000) this.scrollback.shift();
      this.rows.push(this.blank());
      this.y = this.height - 1;
    }
  };
  Screen.prototype.put = function (ch) {
    if (this.x >= this.width) { this.x = 0; this.lineFeed(); }
    this.rows[this.y][this.x++] = ch;
  };
  Screen.prototype.eraseLine = function (mode) {
    var row = this.rows[this.y], from = mode === 1 || mode === 2 ? 0 : this.x, to = mode === 0 ? this.width : (mode === 1 ? this.x + 1 : this.width);
    for (var i = from; i < Math.min(to, this.width); i++) row[i] = " ";
  };
  Screen.prototype.eraseDisplay = function (mode) {
    var i;
    if (mode === 2 || mode === 3) { for (i = 0; i < this.height; i++) this.rows[i] = this.blank(); return; }
    if (mode === 0) { this.eraseLine(0); for (i = this.y + 1; i < this.height; i++) this.rows[i] = this.blank(); }
    if (mode === 1) { this.eraseLine(1); for (i = 0; i < this.y; i++) this.rows[i] = this.blank(); }
  };
  Screen.prototype.csi = function (params, final, priv) {
    var args = params.split(";").map(function (p) { return p === "" ? NaN : parseInt(p, 10); });
    var n = isNaN(args[0]) ? 1 : Math.max(1, args[0]);
    switch (final) {
      case "A": this.y = Math.max(0, this.y - n); break;
      case "B": this.y = Math.min(this.height - 1, this.y + n); break;
      case "C": this.x = Math.min(this.width - 1, this.x + n); break;
      case "D": this.x = Math.max(0, this.x - n); break;
      case "G": this.x = Math.min(this.width - 1, n - 1); break;
      case "d": this.y = Math.min(this.height - 1, n - 1); break;
      case "H": case "f":
        this.y = Math.min(this.height - 1, (isNaN(args[0]) ? 1 : Math.max(1, args[0])) - 1);
        this.x = Math.min(this.width - 1, (isNaN(args[1]) ? 1 : Math.max(1, args[1])) - 1);
        break;
      case "J": this.eraseDisplay(isNaN(args[0]) ? 0 : args[0]); break;
      case "K": this.eraseLine(isNaN(args[0]) ? 0 : args[0]); break;
      case "h": case "l":
        if (priv && (args[0] === 1049 || args[0] === 47)) { this.eraseDisplay(2); this.x = 0; this.y = 0; }
        break;
      default: break; /* colours (m) and the rest: ignored */
    }
  };
  Screen.prototype.text = function () {
    var rows = this.rows.map(function (r) { return r.join("").replace(/\s+$/, ""); });
    while (rows.length && rows[rows.length - 1] === "") rows.pop();
    return this.scrollback.concat(rows).join("\n");
  };

  /* A byte-free escape-sequence parser over decoded text; state survives chunk ends. */
  function Terminal(width, height) { this.screen = new Screen(width, height); this.state = "text"; this.seq = ""; }
  Terminal.prototype.write = function (data) {
    var s = this.screen;
    for (var i = 0; i < data.length; i++) {
      var ch = data[i];
      if (this.state === "esc") {
        if (ch === "[") { this.state = "csi"; this.seq = ""; }
        else if (ch === "]") { this.state = "osc"; }
        else if (ch === "(" || ch === ")") { this.state = "charset"; }
        else this.state = "text";
        continue;
      }
      if (this.state === "charset") { this.state = "text"; continue; }
      if (this.state === "osc") {
        if (ch === "\x07") this.state = "text";
        else if (ch === "\x1b") this.state = "osc-esc";
        continue;
      }
      if (this.state === "osc-esc") { this.state = "text"; continue; }
      if (this.state === "csi") {
        if (ch >= "@" && ch <= "~") {
          var priv = this.seq.charAt(0) === "?";
          s.csi(this.seq.replace(/^[?>=!]/, ""), ch, priv);
          this.state = "text";
        } else { this.seq += ch; }
        continue;
      }
      if (ch === "\x1b") { this.state = "esc"; }
      else if (ch === "\r") { s.x = 0; }
      else if (ch === "\n") { s.lineFeed(); }
      else if (ch === "\b") { s.x = Math.max(0, s.x - 1); }
      else if (ch === "\t") { s.x = Math.min(s.width - 1, (Math.floor(s.x / 8) + 1) * 8); }
      else if (ch < " " || ch === "\x7f") { /* other controls: ignored */ }
      else { s.put(ch); }
    }
  };

  function parseCast(text) {
    var lines = text.split("\n").filter(function (l) { return l.trim() !== ""; });
    var header = JSON.parse(lines[0]);
    if (header.version !== 2) throw new Error("not an asciicast v2 recording");
    var events = lines.slice(1).map(function (l) { return JSON.parse(l); });
    return { header: header, events: events };
  }

  function Player(root) {
    this.root = root;
    this.screenEl = root.querySelector(".player-screen");
    this.progress = root.querySelector("progress");
    this.clock = root.querySelector(".player-clock");
    this.playButton = root.querySelector('[data-action="play"]');
    this.speed = 1; this.skipIdle = true; this.timer = null;
    var self = this;
    this.playButton.addEventListener("click", function () { self.playing ? self.pause() : self.play(); });
    root.querySelector('[data-action="restart"]').addEventListener("click", function () { self.reset(); self.play(); });
    root.querySelector('[data-action="speed"]').addEventListener("change", function (e) { self.speed = parseFloat(e.target.value) || 1; });
    root.querySelector('[data-action="skip-idle"]').addEventListener("change", function (e) { self.skipIdle = e.target.checked; });
    var params = new URLSearchParams(window.location.search);
    if (params.get("speed")) { this.speed = parseFloat(params.get("speed")) || 1; }
    fetch(root.dataset.src, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (text) {
        self.cast = parseCast(text);
        var last = self.cast.events.length ? self.cast.events[self.cast.events.length - 1][0] : 0;
        self.duration = last;
        self.reset();
        root.dataset.state = "ready";
        if (params.get("autoplay")) self.play();
      })
      .catch(function (err) { root.dataset.state = "error"; self.screenEl.textContent = "Cannot load the recording: " + err.message; });
  }
  Player.prototype.reset = function () {
    clearTimeout(this.timer);
    this.playing = false; this.index = 0; this.at = 0;
    this.term = new Terminal(this.cast.header.width || 80, this.cast.header.height || 24);
    this.draw();
    this.playButton.textContent = "Play";
  };
  Player.prototype.draw = function () {
    this.screenEl.textContent = this.term.screen.text();
    this.screenEl.scrollTop = this.screenEl.scrollHeight;
    this.progress.value = this.duration ? Math.min(1, this.at / this.duration) : 1;
    this.clock.textContent = this.at.toFixed(1) + " / " + this.duration.toFixed(1) + " s";
  };
  Player.prototype.apply = function (event) {
    var kind = event[1], data = event[2];
    if (kind === "o") this.term.write(data);
    else if (kind === "r") { var m = /^(\d+)x(\d+)$/.exec(data); if (m) this.term.screen.resize(+m[1], +m[2]); }
    this.at = event[0];
  };
  Player.prototype.play = function () {
    if (!this.cast) return;
    if (this.index >= this.cast.events.length) this.reset();
    this.playing = true; this.root.dataset.state = "playing"; this.playButton.textContent = "Pause";
    this.step();
  };
  Player.prototype.pause = function () {
    clearTimeout(this.timer); this.playing = false;
    this.root.dataset.state = "paused"; this.playButton.textContent = "Play";
  };
  Player.prototype.step = function () {
    var self = this, events = this.cast.events;
    if (!this.playing) return;
    if (this.index >= events.length) {
      this.playing = false; this.root.dataset.state = "ended"; this.playButton.textContent = "Replay";
      this.at = this.duration; this.draw(); return;
    }
    var event = events[this.index];
    var wait = Math.max(0, event[0] - this.at);
    if (this.skipIdle) wait = Math.min(wait, 2);
    this.timer = setTimeout(function () {
      /* apply everything due at once, draw once */
      var now = events[self.index][0];
      while (self.index < events.length && events[self.index][0] <= now) self.apply(events[self.index++]);
      self.draw();
      self.step();
    }, (wait * 1000) / this.speed);
  };

  function start() {
    document.querySelectorAll("[data-src].player").forEach(function (root) { root.player = new Player(root); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.BerthCast = { Terminal: Terminal, parseCast: parseCast };
})();
