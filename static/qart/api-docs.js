// The API docs page (templates/qartsite/api_docs.html): Swagger UI draws a parameter's list of allowed values as a
// <select> with no name a screen reader can say (axe's select-name). Each is named after its parameter, again
// whenever Swagger UI draws more (an operation opened, "Try it out").
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  if (!root) return;
  const nameSelects = () => {
    for (const select of root.querySelectorAll("tr[data-param-name] select:not([aria-label])")) {
      select.setAttribute("aria-label", select.closest("tr[data-param-name]").dataset.paramName);
    }
  };
  new MutationObserver(nameSelects).observe(root, { childList: true, subtree: true });
})();
