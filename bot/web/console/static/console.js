// Live deadline countdowns: <time class="countdown" datetime="ISO" data-left="…" data-late="…">
(function () {
  function fmt(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " : "") + m + "m " + (s % 60) + "s";
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
