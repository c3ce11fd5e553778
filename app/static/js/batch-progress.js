// Follows a batch being read: updates the status text and the progress bar in place
// (announced politely by the live region), and reloads the page once, when it is done.
(function () {
  "use strict";
  var box = document.querySelector("[data-batch-status-url]");
  if (!box || box.getAttribute("data-reading") !== "true") return;
  var url = box.getAttribute("data-batch-status-url");
  var counter = box.querySelector("[data-pages-read]");
  var bar = box.querySelector("progress");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return setTimeout(poll, 2000);
        if (s.state !== "queued" && s.state !== "reading") return window.location.reload();
        if (counter && counter.textContent !== String(s.pages_read)) counter.textContent = s.pages_read;
        if (bar) { bar.max = s.page_count; bar.value = s.pages_read; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
