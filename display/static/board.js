/* The waiting-room board, live over Socket.IO (namespace /board, a room per centre).

   The server sends the whole board on connect and after each call, so a board that lost
   its network shows the truth again as soon as it reconnects; between calls the board asks
   for a fresh copy every 20 s, which also tells it when the line went quiet. While
   disconnected it keeps the last state and says so, with the time of the last update. */
(function () {
  "use strict";

  var root = document.querySelector("[data-board]");
  if (!root) return;

  var HEARTBEAT_MS = 20000;
  var STALE_MS = 8000;       // no answer to a heartbeat this long → offline
  var FLASH_MS = 10000;
  var texts = JSON.parse(document.getElementById("board-texts").textContent);
  var centre = root.getAttribute("data-centre");
  var voice = new window.XephangVoice.VoiceLine(root.getAttribute("data-voice"));
  var offlineEl = document.querySelector("[data-offline]");
  var updatedEl = document.querySelector("[data-updated]");
  var sayEl = document.querySelector("[data-say]");
  var soundButton = document.querySelector("[data-sound-enable]");
  var lastBoardAt = Date.now();
  var flashing = {};  // label → time it was called (for the flash)

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] == null ? "" : values[key]; });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------------ clock
  var clockEl = document.querySelector("[data-clock]");
  var offset = +clockEl.getAttribute("data-server-now") - Date.now();
  var timeFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", hour12: false });
  var secondsFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  var dateFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric" });

  function tick() {
    var now = new Date(Date.now() + offset);
    clockEl.querySelector("[data-clock-time]").textContent = timeFmt.format(now);
    clockEl.querySelector("[data-clock-date]").textContent = dateFmt.format(now);
  }
  tick();
  window.setInterval(tick, 1000);

  // ------------------------------------------------------------------ rendering
  function counterText(n) { return fill(texts.counter, { n: n }); }

  function isFresh(label) {
    return flashing[label] && Date.now() - flashing[label] < FLASH_MS;
  }

  function renderLatest(item) {
    var box = root.querySelector("[data-latest]");
    box.textContent = "";
    box.className = "b-latest";
    if (!item) {
      box.classList.add("b-latest--empty");
      box.appendChild(el("span", "b-latest__none", texts.nobody));
      return;
    }
    if (isFresh(item.label)) box.classList.add("is-new");
    var label = el("span", "b-latest__label", item.label);
    label.setAttribute("data-label", "");
    box.appendChild(label);
    var to = el("span", "b-latest__to");
    var arrow = el("span", "b-latest__arrow", "→");
    arrow.setAttribute("aria-hidden", "true");
    to.appendChild(arrow);
    to.appendChild(document.createTextNode(" "));
    to.appendChild(el("span", "visually-hidden", texts.to));
    to.appendChild(document.createTextNode(" "));
    to.appendChild(el("span", "b-latest__counter", counterText(item.counter)));
    box.appendChild(to);
  }

  function renderServing(items) {
    var list = root.querySelector("[data-serving]");
    list.textContent = "";
    items.forEach(function (item) {
      var tile = el("li", "b-tile" + (isFresh(item.label) ? " is-new" : ""));
      tile.setAttribute("data-label", item.label);
      tile.appendChild(el("span", "b-tile__label", item.label));
      tile.appendChild(el("span", "b-tile__counter", counterText(item.counter)));
      list.appendChild(tile);
    });
  }

  function renderRecent(items) {
    var list = root.querySelector("[data-recent]");
    list.textContent = "";
    if (!items.length) list.appendChild(el("li", "b-recent__item b-recent__item--none", "—"));
    items.forEach(function (item) {
      var li = el("li", "b-recent__item");
      li.appendChild(el("span", "b-recent__label", item.label));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "b-recent__counter", counterText(item.counter)));
      list.appendChild(li);
    });
  }

  function renderWaiting(lines) {
    var body = root.querySelector("[data-waiting]");
    body.textContent = "";
    lines.forEach(function (line) {
      var row = el("tr");
      var head = el("th");
      head.setAttribute("scope", "row");
      head.appendChild(el("span", "b-prefix", line.service));
      head.appendChild(document.createTextNode(" " + line.service_name));
      row.appendChild(head);
      row.appendChild(el("td", "num b-wait__count", String(line.count)));
      var eta = !line.count ? texts.none_waiting
        : line.eta_minutes ? fill(texts.eta, line.eta_minutes) : "—";
      row.appendChild(el("td", "num b-wait__eta", eta));
      body.appendChild(row);
    });
  }

  function render(board) {
    var serving = (board.now_serving || []).slice().sort(function (a, b) {
      return String(b.called_at).localeCompare(String(a.called_at));
    });
    renderLatest(serving[0]);
    renderServing(serving.slice(1));
    renderRecent(board.recent || []);
    renderWaiting(board.waiting || []);
    lastBoardAt = Date.now();
    online(true);
    updatedEl.textContent = fill(texts.updated, { time: secondsFmt.format(new Date(Date.now() + offset)) });
    root.setAttribute("data-generated", board.generated_at || "");
  }

  // ------------------------------------------------------------------ connection state
  function online(yes) {
    offlineEl.hidden = yes;
    document.body.classList.toggle("is-offline", !yes);
  }

  // ------------------------------------------------------------------ sound
  // Browsers play sound only after someone touched the page; staff do it once per board.
  function audioAllowed() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return false;
    var context = new Context();
    var running = context.state === "running";
    if (context.close) context.close();
    return running;
  }

  function enableSound() {
    voice.enabled = true;
    soundButton.hidden = true;
    // A silent play inside the gesture unlocks media elements for later announcements.
    var audio = new Audio(root.getAttribute("data-voice").replace(/[^/]*$/, "") + "chime.mp3");
    audio.volume = 0;
    var started = audio.play();
    if (started && started.catch) started.catch(function () {});
  }

  if (audioAllowed()) enableSound();
  else {
    soundButton.hidden = false;
    soundButton.addEventListener("click", enableSound);
  }

  // ------------------------------------------------------------------ socket
  var socket = window.io("/board", {
    query: { centre: centre },
    auth: { centre: centre },
    transports: ["websocket"],
    reconnectionDelayMax: 5000,
  });

  socket.on("connect", function () { socket.emit("snapshot"); });
  socket.on("disconnect", function () { online(false); });
  socket.on("connect_error", function () { online(false); });
  socket.on("board", render);
  socket.on("ticket_called", function (call) {
    flashing[call.label] = Date.now();
    voice.announce(call.label, call.counter);
    sayEl.textContent = fill(texts.called, { label: call.label, n: call.counter });
    socket.emit("ack", { sent_at: call.sent_at });
  });

  var beats = 0;
  window.setInterval(function () {
    beats += 1;
    if (socket.connected && beats % 4 === 0) socket.emit("snapshot");
    if (Date.now() - lastBoardAt > HEARTBEAT_MS + STALE_MS) online(false);
  }, HEARTBEAT_MS / 4);

  window.xephangBoard = { voice: voice, socket: socket };
})();
