// xterm.js's DOM renderer writes its own <style> elements and style="" attributes, which a
// strict Content-Security-Policy (style-src 'self') refuses. Loaded before it, on the pages
// that use it: <style> elements made by our scripts get the page's style nonce (the
// nonce attribute of this script's tag, set by the server per response), and style
// attributes set by our scripts go through the CSSOM, which the policy allows. Markup
// injected into the page gets neither: only scripts from /static/ run here.
(function () {
  "use strict";
  const nonce = document.currentScript && document.currentScript.nonce;
  if (!nonce) return;
  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (name, options) {
    const el = createElement.call(this, name, options);
    if (String(name).toLowerCase() === "style") el.setAttribute("nonce", nonce);
    return el;
  };
  // Only spans: xterm.js styles the cells of its rows (24-bit colours) this way.
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLSpanElement && String(name).toLowerCase() === "style") { this.style.cssText = value; return; }
    return setAttribute.call(this, name, value);
  };
})();
