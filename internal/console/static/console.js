// Floe console: live refresh of the parts of a page marked data-live.
// Pages work without it; it only re-reads the same URL and swaps those
// parts in, while the "live" box is ticked.
"use strict";
(function () {
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!every || !window.fetch || !window.DOMParser) {
    return;
  }
  var box = document.getElementById("live");
  var busy = false;
  function tick() {
    if (busy || (box && !box.checked) || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var fresh = el.id && doc.getElementById(el.id);
          if (fresh) { el.replaceChildren.apply(el, Array.from(fresh.childNodes)); }
        });
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }
  window.setInterval(tick, every);
})();
