/* Counter workstation: keyboard shortcuts, the transfer dialog, one submit at a time, and
   a refresh of the waiting counts every few seconds. Plain JS, no framework; every action
   is still an ordinary form post, so the page works without this file. */
(function () {
  "use strict";

  var desk = document.querySelector("[data-workstation]");
  if (!desk) return;

  var REFRESH_MS = 5000;
  var hint = document.getElementById("hint");
  var keys = {};
  var busy = false;

  Array.prototype.forEach.call(desk.querySelectorAll("[data-key]"), function (el) {
    el.getAttribute("data-key").split(" ").forEach(function (key) { keys[key] = el; });
  });

  function say(text) {
    if (!hint || !text) return;
    hint.textContent = "";
    // A fresh text node so screen readers announce the same message twice in a row.
    window.setTimeout(function () { hint.textContent = text; }, 30);
  }

  function openDialog() {
    var dialog = document.querySelector(".dialog[open]");
    return dialog || null;
  }

  function isTyping(target) {
    return target && target.closest && target.closest("input, select, textarea, [contenteditable=''], [contenteditable='true']");
  }

  function trigger(el) {
    if (el.disabled) { say(el.getAttribute("data-why")); return; }
    if (el.tagName === "A") { el.click(); return; }
    if (el.form && typeof el.form.requestSubmit === "function") { el.form.requestSubmit(el); }
    else { el.click(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (openDialog() || isTyping(event.target)) return;
    var key = event.key === " " ? "space" : String(event.key || "").toLowerCase();
    // Space on a focused button or link activates that control, as everywhere else.
    if (key === "space" && event.target.closest && event.target.closest("button, a, summary")) return;
    var el = keys[key];
    if (!el) return;
    event.preventDefault();
    trigger(el);
  });

  // One action at a time: a double press must not call two citizens.
  Array.prototype.forEach.call(document.querySelectorAll("form[data-action]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (busy) { event.preventDefault(); return; }
      busy = true;
      desk.classList.add("is-busy");
      desk.setAttribute("aria-busy", "true");
    });
  });
  // Coming back through the browser's history must not leave the page locked.
  window.addEventListener("pageshow", function () {
    busy = false;
    desk.classList.remove("is-busy");
    desk.removeAttribute("aria-busy");
  });

  // The transfer dialog; without <dialog> support the link opens the transfer page.
  Array.prototype.forEach.call(desk.querySelectorAll("[data-dialog]"), function (link) {
    var dialog = document.getElementById(link.getAttribute("data-dialog"));
    if (!dialog || typeof dialog.showModal !== "function") return;
    link.addEventListener("click", function (event) {
      event.preventDefault();
      dialog.showModal();
      var first = dialog.querySelector("select:not([disabled]), button:not([disabled])");
      if (first) first.focus();
    });
    dialog.addEventListener("close", function () { link.focus(); });
  });

  // ------------------------------------------------------------ waiting counts
  var url = desk.getAttribute("data-queue-url");
  var shown = desk.getAttribute("data-current") || "";
  var updated = desk.querySelector("[data-updated]");

  function setText(root, selector, value) {
    var el = root.querySelector(selector);
    if (el) el.textContent = String(value);
  }

  function renderNext(holder, next) {
    holder.textContent = "";
    if (!next.length) {
      var none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      holder.appendChild(none);
      return;
    }
    next.forEach(function (item) {
      var span = document.createElement("span");
      span.className = item.priority ? "next next--priority" : "next";
      span.textContent = item.label;
      holder.appendChild(span);
      holder.appendChild(document.createTextNode(" "));
    });
  }

  function apply(data) {
    var now = data.current ? data.current.label + ":" + data.current.status : "";
    if (now !== shown && !openDialog() && !busy) {
      // The counter's ticket changed elsewhere (another tab, the API): show the truth.
      window.location.reload();
      return;
    }
    setText(desk, "[data-total]", data.waiting_total);
    setText(desk, "[data-served]", data.served_today);
    data.services.forEach(function (service) {
      var item = desk.querySelector('[data-service="' + service.id + '"]');
      if (!item) return;
      setText(item, "[data-count]", service.waiting);
      setText(item, "[data-priority]", service.priority);
      var wrap = item.querySelector("[data-priority-wrap]");
      if (wrap) wrap.hidden = !service.priority;
      var holder = item.querySelector("[data-next]");
      if (holder) renderNext(holder, service.next);
    });
    if (updated) {
      updated.textContent = updated.getAttribute("data-label") + " " + data.updated_at;
      updated.classList.remove("is-stale");
    }
  }

  function stale() {
    if (!updated) return;
    updated.textContent = updated.getAttribute("data-fail");
    updated.classList.add("is-stale");
  }

  function refresh() {
    if (document.hidden || busy || !window.fetch) return;
    window.fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") === -1) throw new Error("bad answer");
        return response.json();
      })
      .then(apply, stale);
  }

  if (url) window.setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
