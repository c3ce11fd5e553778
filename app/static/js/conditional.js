// Progressive enhancement of the form steps: a block marked data-shown-when="name=value"
// is shown only while the radio button "name" with that value is chosen. Without
// JavaScript every block shows, and the server ignores the fields that do not apply.
(function () {
  "use strict";
  var blocks = Array.prototype.slice.call(document.querySelectorAll("[data-shown-when]"));
  if (!blocks.length) { return; }
  document.documentElement.classList.add("js");
  function update() {
    blocks.forEach(function (block) {
      var rule = block.getAttribute("data-shown-when").split("=");
      var chosen = document.querySelector('input[name="' + rule[0] + '"]:checked');
      block.hidden = !(chosen && chosen.value === rule[1]);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.type === "radio") { update(); }
  });
  update();
})();
