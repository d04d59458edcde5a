/* City overview: every centre's load for a week, from GET /api/v1/load (one call, with the
   staff session), as a list sortable by load, a scatter map of the centres' coordinates and
   the overload warnings. The day picker chooses the day the map and the list show. Refreshed
   every 60 seconds; the last figures stay on screen when a refresh fails. */
(function () {
  "use strict";

  var root = document.getElementById("overview");
  var data = JSON.parse(document.getElementById("overview-data").textContent);
  if (!root) return;
  var S = data.strings;
  var days = data.days;
  var busyFrom = data.thresholds.busy;
  var fullAbove = data.thresholds.full;
  var centreUrl = root.getAttribute("data-centre-url");
  var status = document.getElementById("status");
  var rowsEl = root.querySelector("[data-rows]");
  var svg = root.querySelector("[data-svg]");
  var tip = root.querySelector("[data-tip]");
  var mapBox = root.querySelector("[data-map]");
  var sortEl = document.getElementById("sort");
  var warnList = root.querySelector("[data-warnings]");
  var warnMore = root.querySelector("[data-warn-more]");
  var SVG_NS = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 60000;
  var WARN_SHOWN = 8;

  var centres = data.centres.map(function (c) {
    return { code: c.code, name: c.name, lat: c.lat, lon: c.lon, days: {} };
  });
  var byCode = {};
  centres.forEach(function (c) { byCode[c.code] = c; });
  var loaded = false;
  var warnOpen = false;
  var timeFmt = new Intl.DateTimeFormat(document.documentElement.lang === "en" ? "en-GB" : "vi-VN", {
    timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  var fmt = window.xephangDashboard.fmt;
  var el = window.xephangDashboard.el;

  function selectedDay() {
    var picked = root.querySelector('input[name="day"]:checked');
    return picked ? picked.value : days[0].date;
  }

  function level(entry) {
    if (!entry) return "closed";
    var u = entry.utilisation;
    if (entry.overloaded || u === null || u > fullAbove) return "over";
    return u >= busyFrom ? "busy" : "ok";
  }

  function percent(entry) {
    if (!entry) return S.closed;
    if (entry.utilisation === null) return "—";
    return Math.round(entry.utilisation * 100) + "%";
  }

  function url(code) {
    return centreUrl.replace("__code__", encodeURIComponent(code));
  }

  function describe(centre, day) {
    var entry = centre.days[day];
    if (!loaded) return centre.name + " (" + centre.code + ")";
    if (!entry) return centre.name + " (" + centre.code + "): " + S.closed;
    var parts = [
      fmt(S.load, { percent: percent(entry) }),
      fmt(S.officers, { officers: entry.officers, needed: entry.needed }),
      entry.wait_p90 === null ? S.wait_unbounded : fmt(S.wait, { minutes: entry.wait_p90 }),
    ];
    if (level(entry) === "over") parts.unshift(S.over);
    return centre.name + " (" + centre.code + "): " + parts.join(", ");
  }

  // ------------------------------------------------------------------ the list

  function sortKey(centre, day) {
    var entry = centre.days[day];
    if (!entry) return -1;
    if (entry.utilisation === null) return Infinity;
    return entry.utilisation + (entry.overloaded ? 1000 : 0);
  }

  function sorted(day) {
    var mode = sortEl.value;
    var list = centres.slice();
    list.sort(function (a, b) {
      if (mode === "name") return a.name.localeCompare(b.name, "vi");
      if (mode === "code") return a.code < b.code ? -1 : a.code > b.code ? 1 : 0;
      var d = sortKey(b, day) - sortKey(a, day);
      if (mode === "load-asc") {
        // Closed days last either way.
        var ka = sortKey(a, day), kb = sortKey(b, day);
        if (ka < 0 || kb < 0) return kb - ka;
        d = -d;
      }
      return d || (a.code < b.code ? -1 : 1);
    });
    return list;
  }

  function renderRows() {
    var day = selectedDay();
    var body = document.createDocumentFragment();
    sorted(day).forEach(function (centre) {
      var tr = el("tr");
      var th = el("th");
      th.scope = "row";
      var link = el("a", null, centre.name);
      link.href = url(centre.code);
      th.appendChild(link);
      th.appendChild(el("span", "code", centre.code));
      tr.appendChild(th);
      var today = centre.days[day];
      tr.appendChild(el("td", "num", today ? today.officers + "/" + today.needed : "–"));
      days.forEach(function (d) {
        var entry = centre.days[d.date];
        var lvl = level(entry);
        var td = el("td", "cell cell--" + lvl + (d.date === day ? " is-selected" : ""));
        td.appendChild(el("span", null, percent(entry)));
        if (lvl === "over") td.appendChild(el("span", "visually-hidden", " (" + S.over + ")"));
        td.title = describe(centre, d.date);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    rowsEl.replaceChildren(body);
    Array.prototype.forEach.call(root.querySelectorAll("th[data-col]"), function (th) {
      th.classList.toggle("is-selected", th.getAttribute("data-col") === day);
    });
  }

  // ------------------------------------------------------------------ the map

  var placed = centres.filter(function (c) { return c.lat !== null && c.lon !== null; });
  var W = 1000, PAD = 24, R = 9;
  var view = (function () {
    if (!placed.length) return null;
    var lats = placed.map(function (c) { return c.lat; });
    var lons = placed.map(function (c) { return c.lon; });
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    var k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    var spanX = Math.max((maxLon - minLon) * k, 1e-6);
    var spanY = Math.max(maxLat - minLat, 1e-6);
    var scale = (W - 2 * PAD) / Math.max(spanX, spanY);
    var H = Math.max(Math.round(spanY * scale + 2 * PAD), 240);
    var offX = (W - spanX * scale) / 2, offY = (H - spanY * scale) / 2;
    return {
      H: H,
      x: function (lon) { return offX + (lon - minLon) * k * scale; },
      y: function (lat) { return offY + (maxLat - lat) * scale; },
    };
  })();

  var dots = {};

  function buildMap() {
    if (!view) return;
    svg.setAttribute("viewBox", "0 0 " + W + " " + view.H);
    placed.forEach(function (centre) {
      var a = document.createElementNS(SVG_NS, "a");
      a.setAttribute("href", url(centre.code));
      a.setAttribute("class", "dot dot--closed");
      a.setAttribute("data-code", centre.code);
      var circle = document.createElementNS(SVG_NS, "circle");
      circle.setAttribute("cx", view.x(centre.lon).toFixed(1));
      circle.setAttribute("cy", view.y(centre.lat).toFixed(1));
      circle.setAttribute("r", R);
      a.appendChild(circle);
      a.addEventListener("mouseenter", function () { showTip(centre, a); });
      a.addEventListener("focus", function () { showTip(centre, a); });
      a.addEventListener("mouseleave", hideTip);
      a.addEventListener("blur", hideTip);
      svg.appendChild(a);
      dots[centre.code] = a;
    });
  }

  function paintMap() {
    var day = selectedDay();
    var order = { closed: 0, ok: 1, busy: 2, over: 3 };
    placed
      .slice()
      .sort(function (a, b) { return order[level(a.days[day])] - order[level(b.days[day])]; })
      .forEach(function (centre) {
        var a = dots[centre.code];
        var lvl = loaded ? level(centre.days[day]) : "closed";
        a.setAttribute("class", "dot dot--" + lvl);
        a.setAttribute("aria-label", describe(centre, day));
        svg.appendChild(a); // the busiest drawn last, on top
      });
  }

  function showTip(centre, anchor) {
    var day = selectedDay();
    var box = mapBox.getBoundingClientRect();
    var dot = anchor.getBoundingClientRect();
    tip.replaceChildren();
    tip.appendChild(el("strong", null, centre.name + " (" + centre.code + ")"));
    var entry = centre.days[day];
    var lines = !loaded ? [S.no_data] : !entry ? [S.closed] : [
      fmt(S.load, { percent: percent(entry) }) + (level(entry) === "over" ? " – " + S.over : ""),
      fmt(S.officers, { officers: entry.officers, needed: entry.needed }),
      entry.wait_p90 === null ? S.wait_unbounded : fmt(S.wait, { minutes: entry.wait_p90 }),
    ];
    lines.forEach(function (line) { tip.appendChild(el("span", null, line)); });
    tip.hidden = false;
    var left = dot.left - box.left + dot.width / 2;
    var top = dot.top - box.top;
    tip.style.left = Math.min(Math.max(left, 90), box.width - 90) + "px";
    tip.style.top = top + "px";
    tip.classList.toggle("map__tip--below", top < 90);
    if (top < 90) tip.style.top = dot.bottom - box.top + "px";
  }

  function hideTip() { tip.hidden = true; }

  // ------------------------------------------------------------------ warnings

  function renderWarnings() {
    var rows = [];
    centres.forEach(function (centre) {
      var over = days.filter(function (d) { return level(centre.days[d.date]) === "over" && centre.days[d.date]; });
      if (over.length) rows.push({ centre: centre, over: over });
    });
    rows.sort(function (a, b) {
      var da = days.indexOf(a.over[0]), db = days.indexOf(b.over[0]);
      return da - db || sortKey(b.centre, b.over[0].date) - sortKey(a.centre, a.over[0].date);
    });
    root.querySelector("[data-warn-count]").textContent = "(" + rows.length + ")";
    root.querySelector("[data-warn-empty]").hidden = rows.length > 0;
    var frag = document.createDocumentFragment();
    rows.forEach(function (row, i) {
      var li = el("li", i >= WARN_SHOWN && !warnOpen ? "is-extra" : "");
      li.hidden = i >= WARN_SHOWN && !warnOpen;
      var link = el("a", null, row.centre.name);
      link.href = url(row.centre.code);
      li.appendChild(link);
      li.appendChild(document.createTextNode(" · "));
      li.appendChild(document.createTextNode(row.over.map(function (d) {
        var e = row.centre.days[d.date];
        return fmt(S.warn_item, { day: d.short, needed: e.needed, officers: e.officers }) + " (" + percent(e) + ")";
      }).join("; ")));
      frag.appendChild(li);
    });
    warnList.replaceChildren(frag);
    var extra = rows.length - WARN_SHOWN;
    warnMore.hidden = extra <= 0;
    warnMore.textContent = warnOpen ? S.warn_less : fmt(S.warn_more, { count: extra });
    warnMore.setAttribute("aria-expanded", warnOpen ? "true" : "false");
  }

  // ------------------------------------------------------------------ data

  function apply(body) {
    centres.forEach(function (c) { c.days = {}; });
    body.centres.forEach(function (entry) {
      var centre = byCode[entry.centre];
      if (!centre) {
        centre = { code: entry.centre, name: entry.name, lat: entry.lat, lon: entry.lon, days: {} };
        byCode[entry.centre] = centre;
        centres.push(centre);
      }
      centre.days[entry.date] = entry;
    });
    loaded = true;
    render();
    status.textContent = fmt(S.updated, { time: timeFmt.format(new Date()) });
    status.classList.remove("is-error");
    root.setAttribute("aria-busy", "false");
  }

  function render() {
    renderRows();
    paintMap();
    renderWarnings();
    var picked = root.querySelector('input[name="day"]:checked');
    root.querySelector("[data-day-long]").textContent = picked.getAttribute("data-long");
  }

  function refresh() {
    fetch(root.getAttribute("data-api"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(apply)
      .catch(function (err) {
        status.textContent = fmt(S.failed, { reason: err.message });
        status.classList.add("is-error");
        root.setAttribute("aria-busy", "false");
      });
  }

  root.addEventListener("change", function (event) {
    if (event.target.name === "day") render();
  });
  sortEl.addEventListener("change", renderRows);
  warnMore.addEventListener("click", function () {
    warnOpen = !warnOpen;
    renderWarnings();
  });

  buildMap();
  paintMap();
  refresh();
  window.setInterval(refresh, REFRESH_MS);
})();
