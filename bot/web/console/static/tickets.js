// A ticket's page: Ctrl/⌘+Enter sends the form you are typing in; a form is sent once
// (its buttons are disabled after the first click, so a double click never answers twice).
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("main form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function () {
        setTimeout(function () {
          form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
      form.querySelectorAll("textarea").forEach(function (area) {
        area.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && form.reportValidity()) {
            ev.preventDefault();
            form.requestSubmit();
          }
        });
      });
    });
  });
})();
