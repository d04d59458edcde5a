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

  // The frame is drawn around the mainland and near islands: a far island (Côn Đảo, 180 km
  // out to sea) would otherwise shrink the whole city to a corner. Centres beyond the frame
  // are shown in an inset, by name. "Nội thành" zooms to the densest part, where dozens of
  // wards lie within a few kilometres of each other.
  var located = centres.filter(function (c) { return c.lat !== null && c.lon !== null; });
  var W = 1000, PAD = 24, R = 9;

  function km(a, b) {
    var k = Math.cos(((a.lat + b.lat) / 2) * Math.PI / 180);
    return 111.2 * Math.hypot(a.lat - b.lat, (a.lon - b.lon) * k);
  }

  // Beyond the frame: a centre more than 50 km from any other (an island far out at sea).
  var REMOTE_KM = 50;
  function inFrame(c) {
    return located.length < 3 || located.some(function (o) { return o !== c && km(c, o) <= REMOTE_KM; });
  }
  var placed = [], remote = [];
  located.forEach(function (c) { (inFrame(c) ? placed : remote).push(c); });

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

  // The inner city: around the centre with the most neighbours within 3 km, the box of the
  // nearest 40% of centres, kept to the map's shape.
  var inner = (function () {
    if (!view || placed.length < 12) return null;
    var pts = placed.map(function (c) { return { x: view.x(c.lon), y: view.y(c.lat) }; });
    var near = 3 / (111.2 / (view.y(0) - view.y(1))); // 3 km in map units (111.2 km a degree)
    var best = 0, bestCount = -1;
    pts.forEach(function (p, i) {
      var count = pts.filter(function (q) { return Math.hypot(p.x - q.x, p.y - q.y) <= near; }).length;
      if (count > bestCount) { best = i; bestCount = count; }
    });
    var focus = pts[best];
    var nearest = pts.slice().sort(function (a, b) {
      return Math.hypot(a.x - focus.x, a.y - focus.y) - Math.hypot(b.x - focus.x, b.y - focus.y);
    }).slice(0, Math.max(8, Math.round(pts.length * 0.4)));
    var xs = nearest.map(function (p) { return p.x; }), ys = nearest.map(function (p) { return p.y; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var w = Math.max(x1 - x0, 1) + 2 * PAD, h = Math.max(y1 - y0, 1) + 2 * PAD;
    if (w / h > W / view.H) h = w * view.H / W; else w = h * W / view.H;
    var zoom = W / w;
    if (zoom < 1.5) return null; // no denser part worth a zoom
    return { x: (x0 + x1) / 2 - w / 2, y: (y0 + y1) / 2 - h / 2, w: w, h: h, zoom: zoom };
  })();

  var dots = {};
  var insetEl = null; // the inset of centres beyond the frame, if any

  function dot(centre, cx, cy) {
    var a = document.createElementNS(SVG_NS, "a");
    a.setAttribute("href", url(centre.code));
    a.setAttribute("class", "dot dot--closed");
    a.setAttribute("data-code", centre.code);
    var circle = document.createElementNS(SVG_NS, "circle");
    circle.setAttribute("cx", cx.toFixed(1));
    circle.setAttribute("cy", cy.toFixed(1));
    circle.setAttribute("r", R);
    a.appendChild(circle);
    a.addEventListener("mouseenter", function () { showTip(centre, a); });
    a.addEventListener("focus", function () { showTip(centre, a); });
    a.addEventListener("mouseleave", hideTip);
    a.addEventListener("blur", hideTip);
    dots[centre.code] = a;
    return a;
  }

  function buildMap() {
    if (!view) return;
    placed.forEach(function (centre) { svg.appendChild(dot(centre, view.x(centre.lon), view.y(centre.lat))); });
    if (remote.length) {
      // Bottom left, one line per centre beyond the frame: its dot, then its name.
      var inset = insetEl = document.createElementNS(SVG_NS, "g");
      inset.setAttribute("class", "map__inset");
      inset.setAttribute("data-inset", "");
      var lineH = 30, boxH = 34 + remote.length * lineH, top = view.H - boxH - 8;
      var box = document.createElementNS(SVG_NS, "rect");
      box.setAttribute("x", 8);
      box.setAttribute("y", top);
      box.setAttribute("width", 300);
      box.setAttribute("height", boxH);
      box.setAttribute("rx", 6);
      inset.appendChild(box);
      var title = document.createElementNS(SVG_NS, "text");
      title.setAttribute("x", 20);
      title.setAttribute("y", top + 24);
      title.textContent = S.beyond_frame;
      inset.appendChild(title);
      remote.forEach(function (centre, i) {
        var cy = top + 34 + i * lineH + lineH / 2;
        inset.appendChild(dot(centre, 30, cy));
        var label = document.createElementNS(SVG_NS, "text");
        label.setAttribute("x", 48);
        label.setAttribute("y", cy + 6);
        label.textContent = centre.name;
        inset.appendChild(label);
      });
      svg.appendChild(inset);
    }
    setZoom(false);
  }

  function setZoom(on) {
    var zoomed = Boolean(on && inner);
    var box = zoomed ? [inner.x, inner.y, inner.w, inner.h] : [0, 0, W, view.H];
    svg.setAttribute("viewBox", box.map(function (v) { return v.toFixed(1); }).join(" "));
    var r = zoomed ? R / inner.zoom * 1.6 : R; // dots keep their size on screen, a little larger
    placed.forEach(function (centre) { dots[centre.code].firstChild.setAttribute("r", r.toFixed(2)); });
    if (insetEl) insetEl.style.display = zoomed ? "none" : "";
    Array.prototype.forEach.call(root.querySelectorAll("[data-zoom]"), function (button) {
      button.setAttribute("aria-pressed", String((button.getAttribute("data-zoom") === "inner") === zoomed));
    });
    hideTip();
  }

  function paintMap() {
    var day = selectedDay();
    var order = { closed: 0, ok: 1, busy: 2, over: 3 };
    placed
      .concat(remote)
      .sort(function (a, b) { return order[level(a.days[day])] - order[level(b.days[day])]; })
      .forEach(function (centre) {
        var a = dots[centre.code];
        var lvl = loaded ? level(centre.days[day]) : "closed";
        a.setAttribute("class", "dot dot--" + lvl);
        a.setAttribute("aria-label", describe(centre, day));
        if (!insetEl || !insetEl.contains(a)) svg.insertBefore(a, insetEl); // the busiest on top
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
  var zoomGroup = root.querySelector("[data-zoom-group]");
  if (zoomGroup) {
    zoomGroup.hidden = !inner;
    Array.prototype.forEach.call(zoomGroup.querySelectorAll("[data-zoom]"), function (button) {
      button.addEventListener("click", function () { setZoom(button.getAttribute("data-zoom") === "inner"); });
    });
  }
  refresh();
  window.setInterval(refresh, REFRESH_MS);
})();
