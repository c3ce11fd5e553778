// Reloads the batch page when its reading moves on, until every page is read.
(function () {
  "use strict";
  var box = document.querySelector("[data-batch-status-url]");
  if (!box || box.getAttribute("data-reading") !== "true") return;
  var url = box.getAttribute("data-batch-status-url");
  var seen = null;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return setTimeout(poll, 2000);
        var key = s.state + ":" + s.pages_read;
        if (seen !== null && key !== seen) return window.location.reload();
        seen = key;
        if (s.state === "queued" || s.state === "reading") setTimeout(poll, 1000);
        else window.location.reload();
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
