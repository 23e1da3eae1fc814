// The API docs page (templates/qartsite/api_docs.html): Swagger UI draws buttons and selects with no name a screen
// reader can say (axe's select-name and button-name). Each is named, again whenever Swagger UI draws more (an
// operation opened, "Try it out", the Authorize dialog, a schema's property opened):
// - a parameter's list of allowed values, after its parameter;
// - the dialog's close button, an X drawn in SVG;
// - a schema property's toggle, an arrow drawn in CSS, after its property (and its enum's, as its allowed values).
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  if (!root) return;
  const toggleName = (button) => {
    const row = button.closest("tr.property-row");
    const property = row ? row.firstElementChild.textContent.replace("*", "").trim() : "";
    const what = button.closest(".prop-enum") ? "Allowed values" : "Details";
    return property ? `${what} of ${property}` : what;
  };
  const nameControls = () => {
    for (const select of root.querySelectorAll("tr[data-param-name] select:not([aria-label])")) {
      select.setAttribute("aria-label", select.closest("tr[data-param-name]").dataset.paramName);
    }
    for (const button of root.querySelectorAll(".close-modal:not([aria-label])")) {
      button.setAttribute("aria-label", "Close");
    }
    for (const button of root.querySelectorAll("button.model-box-control:not([aria-label])")) {
      if (!button.textContent.trim()) button.setAttribute("aria-label", toggleName(button));
    }
  };
  new MutationObserver(nameControls).observe(root, { childList: true, subtree: true });
})();
