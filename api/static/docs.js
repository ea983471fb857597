// /docs: Swagger UI (vendored in swagger-ui/, see its VERSION) renders the API's own document.
// "Authorize" takes an API key; "Try it out" then sends it as a bearer header to this origin.
"use strict";
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // no badge from an outside validator
    persistAuthorization: false, // the key lives in this page only, never in storage
  });
});
