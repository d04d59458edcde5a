/* Helpers the dashboard's scripts share: filling "%(name)s" templates from the translated
   strings the pages embed, and building elements with text (never HTML). */
(function () {
  "use strict";

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) {
      return values[key] === undefined || values[key] === null ? "" : String(values[key]);
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  window.xephangDashboard = { fmt: fmt, el: el };
})();
