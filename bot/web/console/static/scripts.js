// The script editor: a variable is inserted at the cursor from the list (not typed), and the
// preview follows the typing (the page's own Preview, asked in the background).
(function () {
  "use strict";
  const form = document.getElementById("editor");
  if (!form) return;
  const area = form.querySelector("textarea[name=text]");
  let timer = null;
  let asked = 0;

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  function swap(doc, id, before) {
    const mine = document.getElementById(id);
    const theirs = doc.getElementById(id);
    if (mine && theirs) mine.replaceWith(document.importNode(theirs, true));
    else if (mine && id === "problems") mine.remove();
    else if (theirs && before) before.before(document.importNode(theirs, true));
  }

  async function refresh() {
    const ask = ++asked;
    const data = new FormData(form);
    data.set("action", "preview");
    // form.action would be the buttons named "action": the attribute is the address
    const answer = await fetch(form.getAttribute("action"), { method: "POST", body: data,
                                                              credentials: "same-origin" });
    if (!answer.ok && answer.status !== 422) return; // keep the last preview
    const page = await answer.text();
    if (ask !== asked) return; // a newer keystroke's preview is on its way
    const doc = new DOMParser().parseFromString(page, "text/html");
    swap(doc, "preview");
    swap(doc, "preview-hint");
    swap(doc, "problems", document.querySelector(".tiles"));
  }

  document.querySelectorAll("button.var").forEach(function (button) {
    button.addEventListener("click", function () {
      area.setRangeText(button.dataset.insert, area.selectionStart, area.selectionEnd, "end");
      area.focus();
      later();
    });
  });
  area.addEventListener("input", later);
})();
