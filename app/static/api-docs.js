// The API's browsable docs (/api/v1/docs): Swagger UI, served from this app, on the
// OpenAPI document named by the page (no inline script: the pages' CSP forbids it).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true });
});
