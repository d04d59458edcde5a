// xephang kiosk: idle return, clock, scanner capture, on-screen keyboard, live search,
// one-tap forms and automatic printing. Plain JS, no libraries; every screen also works
// (more plainly) without it.
(function () {
  "use strict";

  // ---------------------------------------------------------------- idle → start screen
  function idle() {
    var screen = document.querySelector("[data-idle-seconds]");
    if (!screen) return;
    var seconds = parseInt(screen.getAttribute("data-idle-seconds"), 10) || 30;
    var url = screen.getAttribute("data-idle-url");
    var warning = document.querySelector("[data-idle-warning]");
    var count = warning && warning.querySelector("[data-idle-count]");
    var warnAt = Math.min(10, Math.floor(seconds / 3));
    var left = seconds;

    function reset() {
      left = seconds;
      if (warning) warning.hidden = true;
    }
    function tick() {
      left -= 1;
      if (left <= 0) {
        window.location.replace(url);
        return;
      }
      if (warning && left <= warnAt) {
        warning.hidden = false;
        if (count) count.textContent = count.getAttribute("data-template").replace("{n}", String(left));
      }
    }
    ["pointerdown", "keydown", "input", "wheel", "touchstart"].forEach(function (name) {
      document.addEventListener(name, reset, { passive: true, capture: true });
    });
    var stay = document.querySelector("[data-idle-stay]");
    if (stay) stay.addEventListener("click", reset);
    window.setInterval(tick, 1000);
  }

  // The start screen reloads now and then (open/closed notice, a new day).
  function refresh() {
    var el = document.querySelector("[data-refresh-seconds]");
    if (!el) return;
    var seconds = parseInt(el.getAttribute("data-refresh-seconds"), 10) || 600;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }

  // ---------------------------------------------------------------- clock
  function clock() {
    var el = document.querySelector("[data-clock]");
    if (!el || !window.Intl) return;
    // Follow the server's clock (it may be injected), ticking locally.
    var offset = parseInt(el.getAttribute("data-server-now"), 10) - Date.now();
    var time = el.querySelector(".k-clock__time");
    var day = el.querySelector(".k-clock__date");
    var zone = "Asia/Ho_Chi_Minh";
    var fmtTime = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: zone });
    var fmtDay = new Intl.DateTimeFormat("en-GB", { day: "2-digit", month: "2-digit", year: "numeric", timeZone: zone });
    function show() {
      var now = new Date(Date.now() + offset);
      if (time) time.textContent = fmtTime.format(now);
      if (day) day.textContent = fmtDay.format(now);
    }
    show();
    window.setInterval(show, 1000);
  }

  // ---------------------------------------------------------------- hardware scanner
  // A scanner "types" its payload in one quick burst ending with Enter. On screens
  // without an input of their own, such a burst is a check-in.
  function scanCapture() {
    var form = document.querySelector("[data-scan-capture]");
    if (!form) return;
    var field = form.querySelector("input[name=code]");
    var buffer = "";
    var last = 0;
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
      var now = Date.now();
      // A pause means a new scan (or stray keys): start over.
      if (now - last > 400) buffer = "";
      last = now;
      if (event.key === "Enter") {
        if (buffer.length >= 8) {
          event.preventDefault();
          field.value = buffer;
          buffer = "";
          form.submit();
        }
        return;
      }
      if (event.key && event.key.length === 1) buffer += event.key;
    });
  }

  // The check-in screen: the code field keeps focus so a scan always lands in it; a
  // short typed code followed by Enter moves on to the phone digits.
  function checkIn() {
    var form = document.querySelector("[data-checkin]");
    if (!form) return;
    var code = form.querySelector("[data-scan-input]");
    var last4 = form.querySelector("input[name=last4]");
    function looksLikeQr(value) { return value.length >= 24 && value.indexOf(".") >= 0; }
    code.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      var value = code.value.trim();
      if (!looksLikeQr(value) && value && !last4.value) {
        event.preventDefault();
        last4.focus();
      }
    });
    window.addEventListener("pageshow", function () { code.focus(); });
    if (!form.querySelector("[aria-invalid=true]")) code.focus();
    else form.querySelector("[aria-invalid=true]").focus();
  }

  // ---------------------------------------------------------------- on-screen keyboard
  function keyboard() {
    var board = document.querySelector("[data-osk]");
    if (!board) return;
    var targets = Array.prototype.slice.call(document.querySelectorAll("[data-osk-target]"));
    if (!targets.length) return;
    var target = document.activeElement && document.activeElement.hasAttribute("data-osk-target")
      ? document.activeElement : targets[0];
    var docked = board.hasAttribute("data-osk-docked");
    function open() {
      if (!docked || !board.hidden) return;
      board.hidden = false;
      // Keep what is typed and its results above the docked keyboard.
      document.body.style.paddingBottom = board.offsetHeight + "px";
      target.scrollIntoView({ block: "start", behavior: "instant" });
    }
    function close() {
      if (!docked) return;
      board.hidden = true;
      document.body.style.paddingBottom = "";
      target.blur();
    }
    targets.forEach(function (input) {
      input.addEventListener("focus", function () { target = input; open(); });
      input.addEventListener("pointerdown", function () { target = input; open(); });
    });
    // Keep focus (and the caret) in the input while keys are pressed.
    board.addEventListener("pointerdown", function (event) {
      if (event.target.closest("[data-key]")) event.preventDefault();
    });
    board.addEventListener("click", function (event) {
      var key = event.target.closest("[data-key]");
      if (!key) return;
      var value = target.value;
      var start = target.selectionStart == null ? value.length : target.selectionStart;
      var end = target.selectionEnd == null ? value.length : target.selectionEnd;
      var name = key.getAttribute("data-key");
      var caret;
      if (name === "backspace") {
        if (start === end && start > 0) start -= 1;
        value = value.slice(0, start) + value.slice(end);
        caret = start;
      } else if (name === "close") {
        close();
        return;
      } else if (name === "clear") {
        value = "";
        caret = 0;
      } else {
        var max = parseInt(target.getAttribute("maxlength"), 10);
        if (max && value.length - (end - start) >= max) return;
        if (target.getAttribute("inputmode") === "numeric" && !/[0-9]/.test(name)) return;
        value = value.slice(0, start) + name + value.slice(end);
        caret = start + name.length;
      }
      target.value = value;
      target.focus();
      try { target.setSelectionRange(caret, caret); } catch (e) { /* type=search */ }
      target.dispatchEvent(new Event("input", { bubbles: true }));
      // Four digits typed: the phone field is done, move on to the button.
      if (target.getAttribute("inputmode") === "numeric" && value.length === 4) {
        var submit = target.form && target.form.querySelector("[type=submit]");
        if (submit) submit.focus();
      }
    });
  }

  // ---------------------------------------------------------------- live search
  function liveSearch() {
    var form = document.querySelector("[data-live-search]");
    var results = document.querySelector("[data-results]");
    if (!form || !results || !window.fetch) return;
    var input = form.querySelector("input[name=q]");
    var browse = document.querySelector("[data-browse]");
    var timer = null;
    var seq = 0;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var q = input.value.trim();
        if (browse) browse.hidden = q.length > 0;
        if (!q && browse) { results.innerHTML = ""; return; }
        var mine = ++seq;
        var url = form.action + "?partial=1&q=" + encodeURIComponent(q);
        fetch(url, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null || mine !== seq) return;
            var holder = document.createElement("div");
            holder.innerHTML = html;
            var fresh = holder.querySelector("[data-results]");
            if (fresh) results.innerHTML = fresh.innerHTML;
          })
          .catch(function () { /* keep the current list; the Search button still works */ });
      }, 250);
    });
  }

  // ---------------------------------------------------------------- one tap, one request
  function oneTapForms() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-sent")) {
          event.preventDefault();
          return;
        }
        form.setAttribute("data-sent", "1");
        form.querySelectorAll("[type=submit]").forEach(function (button) {
          button.setAttribute("aria-disabled", "true");
          var busy = button.getAttribute("data-busy-text");
          if (busy) button.textContent = busy;
        });
      });
    });
    // Coming back to a page from the history must allow sending again.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) window.location.reload();
    });
  }

  // ---------------------------------------------------------------- printing
  function printing() {
    var again = document.querySelector("[data-print]");
    if (again) again.addEventListener("click", function () { window.print(); });
    if (document.querySelector("[data-autoprint]")) {
      window.addEventListener("load", function () { window.setTimeout(function () { window.print(); }, 200); });
    }
  }

  function init() {
    idle();
    refresh();
    clock();
    scanCapture();
    checkIn();
    keyboard();
    liveSearch();
    oneTapForms();
    printing();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
