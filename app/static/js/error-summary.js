// A page that comes back with errors moves the focus to its error summary, so that a
// screen reader reads the errors first and the links lead to each field.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
});
