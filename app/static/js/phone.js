// On a phone: every table becomes one card per row, each cell named by its column (the
// cells get data-label from the table's own headers; CSS draws the cards), and the main
// menu starts closed. Without this script tables scroll inside their own box and the menu
// stays open: nothing is lost.
(function () {
  "use strict";
  function label(table) {
    var heads = table.querySelectorAll("thead th");
    if (!heads.length) { return; }
    var names = Array.prototype.map.call(heads, function (th) { return th.textContent.trim(); });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, i) {
        if (!cell.hasAttribute("data-label") && names[i] && !cell.hasAttribute("colspan")) {
          cell.setAttribute("data-label", names[i]);
        }
      });
    });
    table.classList.add("table--cards");
  }
  document.querySelectorAll("main table.table").forEach(label);
  var menu = document.querySelector("details.site-menu");
  if (menu && window.matchMedia("(max-width: 40rem)").matches) { menu.open = false; }
})();
