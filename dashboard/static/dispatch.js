/* Dispatch plan: the day's recommended moves and shortfalls from GET /api/v1/dispatch-plan,
   accepted or declined over fetch with the staff session and its CSRF token. A plan that
   changed since it was shown (409 plan_changed) is explained and shown afresh. */
(function () {
  "use strict";

  var root = document.getElementById("plan");
  if (!root) return;
  var data = JSON.parse(document.getElementById("dispatch-data").textContent);
  var S = data.strings;
  var names = data.names;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var status = root.querySelector("[data-status]");
  var outcome = root.querySelector("[data-outcome]");
  var decisionEl = root.querySelector("[data-decision]");
  var body = root.querySelector("[data-body]");
  var actions = root.querySelector("[data-actions]");
  var acceptBtn = root.querySelector("[data-accept]");
  var declineBtn = root.querySelector("[data-decline]");
  var reloadBtn = root.querySelector("[data-reload]");
  var centreUrl = root.getAttribute("data-centre-url");
  var plan = null;
  var timeFmt = new Intl.DateTimeFormat(document.documentElement.lang === "en" ? "en-GB" : "vi-VN", {
    timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", hour12: false,
  });
  var numFmt = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-GB" : "vi-VN", { maximumFractionDigits: 1 });

  var fmt = window.xephangDashboard.fmt;
  var el = window.xephangDashboard.el;

  function centreCell(code) {
    var td = el("td");
    if (code === null) {
      td.appendChild(el("strong", null, S.pool));
      return td;
    }
    var box = el("span");
    var link = el("a", null, names[code] || code);
    link.href = centreUrl.replace("__code__", encodeURIComponent(code));
    box.appendChild(link);
    box.appendChild(el("span", "code", code));
    td.appendChild(box);
    return td;
  }

  function wait(minutes) {
    return minutes === null ? S.unbounded : fmt(S.minutes, { minutes: numFmt.format(minutes) });
  }

  function say(kind, text) {
    outcome.className = "notice notice--" + kind;
    outcome.replaceChildren(el("p", null, text));
    outcome.hidden = false;
  }

  // Each cell carries its column's name, shown beside it when a phone stacks the rows.
  var headers = Array.prototype.map.call(root.querySelectorAll("[data-moves-wrap] thead th"), function (th) {
    return th.textContent.trim();
  });

  function labelled(tr) {
    Array.prototype.forEach.call(tr.children, function (td, i) { td.setAttribute("data-label", headers[i]); });
    return tr;
  }

  function render(p) {
    plan = p;
    var officers = p.moves.reduce(function (sum, m) { return sum + m.officers; }, 0);
    status.textContent = fmt(S.plan_id, { id: p.id, moves: p.moves.length, officers: officers });
    var rows = document.createDocumentFragment();
    p.moves.forEach(function (m) {
      var tr = el("tr");
      tr.appendChild(centreCell(m.from_centre));
      tr.appendChild(centreCell(m.to_centre));
      tr.appendChild(el("td", "num", String(m.officers)));
      tr.appendChild(el("td", "num", m.distance_km === null ? "–" : fmt(S.km, { km: numFmt.format(m.distance_km) })));
      tr.appendChild(el("td", "num", wait(m.wait_p90_before) + " → " + wait(m.wait_p90_after)));
      rows.appendChild(labelled(tr));
    });
    root.querySelector("[data-moves]").replaceChildren(rows);
    root.querySelector("[data-moves-wrap]").hidden = !p.moves.length;
    root.querySelector("[data-no-moves]").hidden = p.moves.length > 0;
    var shorts = document.createDocumentFragment();
    p.shortfalls.forEach(function (u) {
      shorts.appendChild(el("li", null, fmt(S.short, { centre: (names[u.centre] || u.centre) + " (" + u.centre + ")", officers: u.officers })));
    });
    root.querySelector("[data-shortfalls]").replaceChildren(shorts);
    root.querySelector("[data-no-shortfalls]").hidden = p.shortfalls.length > 0;

    var decision = p.decision || null;
    var earlier = p.earlier || [];
    decisionEl.hidden = !decision && !earlier.length;
    var said = document.createDocumentFragment();
    if (decision) {
      var text = decision.status === "accepted" ? S.accepted_by : S.declined_by;
      said.appendChild(el("p", null, fmt(text, {
        by: decision.by || S.someone,
        at: decision.at ? timeFmt.format(new Date(decision.at)) : "",
      })));
    }
    earlier.forEach(function (d) {
      var before = d.status === "accepted" ? S.earlier_accepted : S.earlier_declined;
      said.appendChild(el("p", null, fmt(before, {
        plan: d.plan.slice(0, 12),
        by: d.by || S.someone,
        at: d.at ? timeFmt.format(new Date(d.at)) : "",
      })));
    });
    decisionEl.className = "decision decision--" + (decision ? decision.status : (earlier[0] || {}).status);
    decisionEl.replaceChildren(said);
    var accepted = decision && decision.status === "accepted";
    actions.hidden = false;
    acceptBtn.hidden = !p.moves.length || accepted;
    declineBtn.hidden = !p.moves.length || !!decision;
    body.hidden = false;
    root.setAttribute("aria-busy", "false");
  }

  function load() {
    root.setAttribute("aria-busy", "true");
    status.textContent = S.loading;
    return fetch(root.getAttribute("data-api"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(render)
      .catch(function (err) {
        status.textContent = fmt(S.failed, { reason: err.message });
        root.setAttribute("aria-busy", "false");
      });
  }

  function busy(on) {
    [acceptBtn, declineBtn, reloadBtn].forEach(function (b) { b.disabled = on; });
    if (on) say("info", S.working);
  }

  function decide(kind) {
    if (!plan) return;
    busy(true);
    var target = root.getAttribute(kind === "accept" ? "data-accept" : "data-decline").replace("__id__", encodeURIComponent(plan.id));
    fetch(target, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          return { status: response.status, body: answer };
        });
      })
      .then(function (result) {
        busy(false);
        var answer = result.body || {};
        if (result.status === 200 && kind === "accept") {
          var text = answer.already_accepted ? S.accepted_again : fmt(S.accepted, {
            created: answer.assignments_created,
            slots: (answer.slots_created || 0) + (answer.slots_resized || 0),
          });
          say("success", text);
        } else if (result.status === 200) {
          say("success", S.declined);
        } else if (result.status === 409 && answer.code === "plan_changed") {
          say("warning", S.changed);
        } else {
          say("error", fmt(S.error, { detail: answer.detail || "HTTP " + result.status }));
        }
        outcome.setAttribute("tabindex", "-1");
        outcome.focus();
        return load();
      })
      .catch(function (err) {
        busy(false);
        say("error", fmt(S.error, { detail: err.message }));
      });
  }

  acceptBtn.addEventListener("click", function () { decide("accept"); });
  declineBtn.addEventListener("click", function () { decide("decline"); });
  reloadBtn.addEventListener("click", function () { outcome.hidden = true; load(); });
  load();
})();
