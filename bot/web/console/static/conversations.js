// A conversation's page: picking a canned reply puts its text (already rendered for this
// owner, in their language) in the answer box, without leaving the page; without
// JavaScript the "Use" button reloads the page with it filled in.
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    var pick = document.getElementById("canned"), box = document.getElementById("answer");
    var form = document.getElementById("canned-get");
    if (!pick || !box || !form) { return; }
    function use() {
      var option = pick.options[pick.selectedIndex];
      if (!option || !option.value) { return; }
      box.value = option.getAttribute("data-text") || "";
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
    pick.addEventListener("change", use);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); use(); });
  });
})();
