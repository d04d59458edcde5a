/* The citizen's live ticket over Socket.IO (namespace /ticket, a room per ticket).

   The server pushes `ticket` on every change of this ticket, and `line_moved` when the
   line ahead moved: then, after a random pause of up to 2 s (so a hall full of phones does
   not ask at the same instant), the page asks for its ticket again. Phones sleep: on wake
   (visibilitychange) and on reconnect the page asks too. When called, it vibrates and,
   if sound was allowed, rings. */
(function () {
  "use strict";

  var root = document.querySelector("[data-ticket]");
  if (!root || !window.io) return;

  var texts = JSON.parse(document.getElementById("ticket-texts").textContent);
  var publicId = root.getAttribute("data-public-id");
  var status = root.getAttribute("data-status");
  var calledAt = root.getAttribute("data-called-at") || null;
  var statusEl = root.querySelector("[data-status-text]");
  var positionEl = root.querySelector("[data-position]");
  var etaEl = root.querySelector("[data-eta]");
  var offlineEl = root.querySelector("[data-offline]");
  var updatedEl = root.querySelector("[data-updated]");
  var soundButton = root.querySelector("[data-sound-enable]");
  var audioContext = null;
  // Times shown follow the server's clock, not the phone's (which may be set wrong).
  var offset = +root.getAttribute("data-server-now") - Date.now() || 0;
  var timeFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] == null ? "" : values[key]; });
  }

  // ------------------------------------------------------------------ sound
  var Context = window.AudioContext || window.webkitAudioContext;
  if (Context && soundButton) {
    soundButton.hidden = false;
    soundButton.addEventListener("click", function () {
      audioContext = audioContext || new Context();
      if (audioContext.resume) audioContext.resume();
      soundButton.hidden = true;
      ring(0.05);
    });
  }

  // Two soft tones made on the spot: no file to download on a slow phone connection.
  function ring(volume) {
    if (!audioContext) return;
    [[784, 0], [523, 0.35]].forEach(function (note) {
      var osc = audioContext.createOscillator(), gain = audioContext.createGain();
      var start = audioContext.currentTime + note[1];
      osc.frequency.value = note[0];
      gain.gain.setValueAtTime(volume, start);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.9);
      osc.connect(gain);
      gain.connect(audioContext.destination);
      osc.start(start);
      osc.stop(start + 1);
    });
  }

  function alertCitizen() {
    if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
    ring(0.6);
  }

  // ------------------------------------------------------------------ rendering
  function render(ticket) {
    if (ticket.public_id && ticket.public_id !== publicId) return;
    if (ticket.status === "transferred" && status !== "transferred") {
      // The server page links to the new ticket.
      window.location.reload();
      return;
    }
    var state = texts.states[ticket.status] || ticket.status;
    statusEl.textContent = fill(state, { counter: ticket.counter });
    var waiting = ticket.status === "waiting";
    positionEl.hidden = !waiting;
    etaEl.hidden = !waiting || !ticket.eta_minutes;
    if (waiting) {
      positionEl.textContent = ticket.position ? fill(texts.ahead, { n: ticket.position }) : texts.next;
      etaEl.textContent = ticket.eta_minutes ? fill(texts.eta, ticket.eta_minutes) : "";
    }
    var nowCalled = ticket.status === "called" && status !== "called";
    var recalled = ticket.status === "called" && status === "called" && ticket.called_at !== calledAt;
    if (nowCalled || recalled) alertCitizen();
    root.className = "tk tk--" + ticket.status;
    root.setAttribute("data-status", ticket.status);
    status = ticket.status;
    calledAt = ticket.called_at;
    offlineEl.hidden = true;
    updatedEl.textContent = fill(texts.updated, { time: timeFmt.format(new Date(Date.now() + offset)) });
  }

  // ------------------------------------------------------------------ socket
  var socket = window.io("/ticket", {
    query: { ticket: publicId },
    auth: { ticket: publicId },
    transports: ["websocket"],
    reconnectionDelayMax: 10000,
  });
  var pending = null;

  function refresh() { if (socket.connected) socket.emit("refresh"); }

  socket.on("connect", refresh);
  socket.on("disconnect", function () { offlineEl.hidden = false; });
  socket.on("connect_error", function () { offlineEl.hidden = false; });
  socket.on("ticket", render);
  socket.on("line_moved", function () {
    if (pending) return;
    pending = window.setTimeout(function () { pending = null; refresh(); }, Math.random() * 2000);
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    if (socket.connected) refresh();
    else socket.connect();
  });
})();
