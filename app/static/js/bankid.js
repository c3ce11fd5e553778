// Keeps a BankID page alive: a new QR code every second, the status message as it changes,
// and on to the next page when the order is done. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var box = document.querySelector("[data-bankid-status-url]");
  if (!box) { return; }
  var qr = box.querySelector("[data-bankid-qr]");
  var message = box.querySelector("[data-bankid-message]");
  var autostart = box.querySelector("[data-bankid-autostart]");
  if (autostart) { window.location.href = autostart.getAttribute("href"); }

  function tick() {
    fetch(box.dataset.bankidStatusUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": box.dataset.csrfToken, "Accept": "application/json" }
    }).then(function (response) { return response.json(); }).then(function (data) {
      if (data.done) { window.location.assign(data.done); return; }
      if (qr && data.qr_svg) { qr.innerHTML = data.qr_svg; }
      if (message && data.message && message.textContent !== data.message) {
        message.textContent = data.message;
      }
      if (data.status === "pending") {
        window.setTimeout(tick, 1000);
      } else {
        if (qr) { qr.hidden = true; }
        box.classList.add("bankid--finished");
      }
    }).catch(function () { window.setTimeout(tick, 2000); });
  }
  window.setTimeout(tick, 1000);
})();
