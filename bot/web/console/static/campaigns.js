// Campaign editor: the live audience count and the live preview (fetch to the console's
// JSON endpoints as the form changes), field errors shown in place; a confirm on cancel.
// Plain JS, no library; the page works without it (the form posts normally).
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function post(url, form) {
    var data = new FormData(form);
    data.delete("_csrf");
    data.delete("action");
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    });
  }

  // Clear the errors of the fields an endpoint checked, then show the ones it found.
  function showErrors(form, checked, errors) {
    (checked || []).forEach(function (name) {
      var el = document.getElementById("err-" + name);
      if (el) { el.textContent = ""; }
      var input = document.getElementById("f-" + name);
      if (input) { input.removeAttribute("aria-invalid"); }
    });
    Object.keys(errors || {}).forEach(function (name) {
      var el = document.getElementById("err-" + name);
      if (el) { el.textContent = errors[name]; }
      var input = document.getElementById("f-" + name);
      if (input) { input.setAttribute("aria-invalid", "true"); }
    });
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function number(n) { return Number(n || 0).toLocaleString(); }

  function showCount(body) {
    setText("count-targeted", number(body.targeted));
    setText("count-eligible", number(body.eligible));
    document.querySelectorAll("#count-excluded tr[data-reason]").forEach(function (row) {
      var n = (body.excluded || {})[row.getAttribute("data-reason")];
      row.querySelector(".n").textContent = number(n);
    });
  }

  function showPreview(body) {
    var box = document.getElementById("preview-samples");
    var template = document.getElementById("sample-template");
    var error = document.getElementById("preview-error");
    var empty = document.getElementById("preview-empty");
    box.textContent = "";
    error.hidden = true;
    empty.hidden = true;
    if (body.error) {
      error.textContent = body.error;
      error.hidden = false;
      return;
    }
    if (!body.samples) { return; }
    if (!body.samples.length) { empty.hidden = false; return; }
    body.samples.forEach(function (sample) {
      var node = template.content.cloneNode(true);
      node.querySelector(".sample-name").textContent = sample.name;
      node.querySelector(".sample-lang").textContent = sample.language;
      node.querySelector(".bubble").textContent = sample.text;
      var buttons = node.querySelector(".sample-buttons");
      sample.buttons.forEach(function (label) {
        var b = document.createElement("span");
        b.textContent = label;
        buttons.appendChild(b);
      });
      box.appendChild(node);
    });
  }

  function editor(form) {
    var countBox = document.getElementById("audience-count");
    var countStatus = document.getElementById("count-status");
    var previewBox = document.getElementById("preview");
    var previewStatus = document.getElementById("preview-status");
    var seq = 0, timer = null;

    function refresh() {
      var mine = ++seq;
      countBox.classList.add("busy");
      countStatus.textContent = countStatus.dataset.loading;
      post(form.dataset.countUrl, form).then(function (r) {
        if (mine !== seq) { return; }
        countBox.classList.remove("busy");
        showErrors(form, r.body.checked, r.body.errors);
        if (r.body.ok) {
          showCount(r.body);
          countStatus.textContent = "";
        } else {
          countStatus.textContent = countStatus.dataset.failed;
        }
      }).catch(function () {
        if (mine === seq) { countBox.classList.remove("busy"); countStatus.textContent = countStatus.dataset.failed; }
      });
      previewBox.classList.add("busy");
      previewStatus.textContent = previewStatus.dataset.loading;
      post(form.dataset.previewUrl, form).then(function (r) {
        if (mine !== seq) { return; }
        previewBox.classList.remove("busy");
        previewStatus.textContent = r.body.samples === null ? previewStatus.dataset.hint : "";
        showErrors(form, r.body.checked, r.body.errors);
        showPreview(r.body);
      }).catch(function () {
        if (mine === seq) { previewBox.classList.remove("busy"); }
      });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    }

    function markKinds() {
      form.querySelectorAll(".button-row").forEach(function (row) {
        var select = row.querySelector("select");
        row.setAttribute("data-kind", select.value || "none");
      });
    }

    form.addEventListener("input", later);
    form.addEventListener("change", function () { markKinds(); later(); });
    markKinds();
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("campaign-form");
    if (form) { editor(form); }
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (event) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();

// Variable buttons: put the variable at the cursor of the message last typed in.
(function () {
  "use strict";
  var last = null;
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("textarea[name^=message_]")) { last = event.target; }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".var-insert");
    if (!button) { return; }
    var area = last || document.querySelector("textarea[name^=message_]");
    if (!area) { return; }
    var text = button.getAttribute("data-insert");
    var start = area.selectionStart || 0, end = area.selectionEnd || 0;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.selectionStart = area.selectionEnd = start + text.length;
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
