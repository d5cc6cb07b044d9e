// Reports: show only the period fields of the chosen kind (month, week or dates).
(function () {
  function sync() {
    var kind = document.getElementById("report-kind");
    if (!kind) { return; }
    document.querySelectorAll("#report-filters [data-kind]").forEach(function (el) {
      var on = el.getAttribute("data-kind") === kind.value;
      el.hidden = !on;
      el.querySelectorAll("input").forEach(function (input) { input.disabled = !on; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.getElementById("report-kind");
    if (kind) { kind.addEventListener("change", sync); }
    sync();
  });
})();
