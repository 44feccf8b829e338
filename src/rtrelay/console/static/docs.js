// The admin API reference: Swagger UI over the OpenAPI document embedded in the page
// (no fetch of another host, no validator badge).
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var spec = JSON.parse(document.getElementById("openapi").textContent);
  window.SwaggerUIBundle({
    spec: spec,
    dom_id: "#swagger",
    validatorUrl: null,
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
