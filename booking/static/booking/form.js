// Small comforts for forms; the pages work the same without this script.

// Move focus to the error summary so screen readers and keyboard users start there.
const summary = document.querySelector("[data-focus-on-load]");
if (summary) {
  summary.focus();
}

// A second tap while the first submit is on its way does nothing. (The server would return
// the same booking anyway, thanks to the form's idempotency key.)
for (const form of document.querySelectorAll("form[data-submit-once]")) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.setAttribute("aria-disabled", "true");
    }
  });
}

// Coming back with the browser's Back button restores a page from cache: make it usable again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-submit-once]")) {
    delete form.dataset.submitting;
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.removeAttribute("aria-disabled");
    }
  }
});
