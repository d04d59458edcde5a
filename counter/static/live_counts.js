/* Counter workstation: waiting counts pushed over Socket.IO (namespace /counter, a room
   per centre, signed-in staff only) the moment a ticket is issued or called anywhere in the
   centre. workstation.js still polls every few seconds for the rest (next labels, the
   counter's own ticket); this only makes the counts live. */
(function () {
  "use strict";

  var desk = document.querySelector("[data-workstation]");
  if (!desk || !window.io) return;
  var centre = desk.getAttribute("data-centre");
  if (!centre) return;

  var total = desk.querySelector("[data-total]");
  var updated = desk.querySelector("[data-updated]");
  var timeFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function apply(data) {
    (data.waiting || []).forEach(function (line) {
      var item = desk.querySelector('[data-service="' + line.service_id + '"]');
      var count = item && item.querySelector("[data-count]");
      if (count) count.textContent = String(line.count);
    });
    if (total) {
      var sum = 0;
      Array.prototype.forEach.call(desk.querySelectorAll("[data-service] [data-count]"), function (el) {
        sum += parseInt(el.textContent, 10) || 0;
      });
      total.textContent = String(sum);
    }
    if (updated) {
      var when = data.generated_at ? new Date(data.generated_at) : new Date();
      updated.textContent = updated.getAttribute("data-label") + " " + timeFmt.format(when);
      updated.classList.remove("is-stale");
    }
  }

  var socket = window.io("/counter", {
    query: { centre: centre },
    auth: { centre: centre },
    transports: ["websocket"],
  });
  socket.on("counts", apply);
})();
