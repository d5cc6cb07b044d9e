// Live deadline countdowns: <time class="countdown" datetime="ISO" data-left="…" data-late="…">
(function () {
  // Units in the staff member's language: <meta name="duration-units" content="h m s">.
  var units = ["h ", "m ", "s"];
  function fmt(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + units[0] : "") + m + units[1] + (s % 60) + units[2];
  }
  // On a phone a list is a stack of cards: each cell carries its column's name.
  function labelCells() {
    document.querySelectorAll("table.list").forEach(function (table) {
      var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!names.length) { return; }
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          if (names[i] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", names[i]); }
        });
      });
    });
  }
  function tick() {
    var now = Date.now() + (window.carebotClockSkew || 0);
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var left = Date.parse(el.getAttribute("datetime")) - now;
      el.textContent = left >= 0 ? (el.dataset.left || "") + " " + fmt(left) : (el.dataset.late || "") + " " + fmt(left);
      el.classList.toggle("breached", left < 0);
      el.classList.toggle("due_soon", left >= 0 && left <= 30 * 60 * 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var server = document.querySelector("meta[name=server-now]");
    if (server) { window.carebotClockSkew = Date.parse(server.content) - Date.now(); }
    var named = document.querySelector("meta[name=duration-units]");
    if (named) { units = named.content.split("|"); }
    labelCells();
    tick(); setInterval(tick, 1000);
    var toggle = document.querySelector(".menu-toggle"), menu = document.getElementById("menu");
    if (toggle && menu) {
      toggle.addEventListener("click", function () {
        var open = menu.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }
  });
})();
