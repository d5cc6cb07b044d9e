// The sandbox chat's phone view: polls the owner's chat about once a second, draws bubbles,
// the bot's inline buttons and the reply keyboard, and sends what the owner does.
// No library; every text is put in the page as text (never as HTML).
(function () {
  "use strict";
  var POLL_MS = 900;
  var phone, owner, strings, version = "", seenAnswers = null, polling = false, timer = null;

  function csrf() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function fmt(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) {
      return values && values[k] !== undefined ? values[k] : m;
    });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body)
    }).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      var parsed = type.indexOf("json") >= 0 ? r.json() : Promise.resolve({});
      return parsed.then(function (data) {
        if (!r.ok) {
          var why = (data && data.error) || (r.status === 403 ? strings.refused : r.status);
          throw new Error(why);
        }
        return data;
      });
    });
  }

  function showToast(text) {
    var toast = document.getElementById("toast");
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function () { toast.hidden = true; }, 3500);
  }

  function fail(err) { showToast(fmt(strings.failed, { error: err.message || err })); }

  function act(body) {
    body.owner = owner;
    return post("/sandbox/chat/act", body).then(function () { pollSoon(150); }, fail);
  }

  // ---- drawing

  var TAGS = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code",
               pre: "pre", spoiler: "span", blockquote: "blockquote", url: "a", text_link: "a" };

  // Text with Telegram entities (UTF-16 offsets, which JavaScript strings use too).
  function richText(text, entities) {
    var frag = document.createDocumentFragment();
    var cuts = [0, text.length];
    entities.forEach(function (e) { cuts.push(e.offset, e.offset + e.length); });
    cuts = cuts.filter(function (v, i, a) { return a.indexOf(v) === i; })
               .sort(function (a, b) { return a - b; });
    for (var i = 0; i + 1 < cuts.length; i++) {
      var a = cuts[i], b = cuts[i + 1];
      var node = document.createTextNode(text.slice(a, b));
      entities.forEach(function (e) {
        if (e.offset <= a && e.offset + e.length >= b) {
          var el = document.createElement(TAGS[e.type] || "span");
          if (e.type === "spoiler") { el.className = "spoiler"; }
          if (e.type === "url" || e.type === "text_link") {
            el.href = e.url || text.slice(e.offset, e.offset + e.length);
            el.target = "_blank"; el.rel = "noopener noreferrer";
          }
          el.appendChild(node);
          node = el;
        }
      });
      frag.appendChild(node);
    }
    return frag;
  }

  function bubble(m) {
    var div = document.createElement("div");
    div.className = "bubble " + (m.from_bot ? "bot" : "me");
    div.dataset.id = m.id;
    var body = document.createElement("div");
    body.className = "bubble-text";
    if (m.contact) {
      body.textContent = "📇 " + fmt(strings.contact, { phone: m.contact });
    } else {
      if (m.photo) { body.appendChild(document.createTextNode(strings.photo + (m.text ? " " : ""))); }
      body.appendChild(richText(m.text, m.entities));
    }
    div.appendChild(body);
    var meta = document.createElement("time");
    meta.textContent = (m.edited ? strings.edited + " · " : "") + m.time;
    div.appendChild(meta);
    if (m.buttons.length) {
      var box = document.createElement("div");
      box.className = "inline-buttons";
      m.buttons.forEach(function (row, r) {
        var line = document.createElement("div");
        line.className = "inline-row";
        row.forEach(function (b, c) {
          var el;
          if (b.url) {
            el = document.createElement("a");
            el.href = b.url; el.target = "_blank"; el.rel = "noopener noreferrer";
            el.className = "inline-button url";
          } else {
            el = document.createElement("button");
            el.type = "button";
            el.className = "inline-button";
            el.disabled = !b.callback;
            el.addEventListener("click", function () {
              act({ action: "press", message_id: m.id, row: r, column: c });
            });
          }
          el.textContent = b.text;
          line.appendChild(el);
        });
        box.appendChild(line);
      });
      div.appendChild(box);
    }
    return div;
  }

  function drawKeyboard(rows) {
    var kb = document.getElementById("reply-keyboard");
    kb.textContent = "";
    kb.hidden = !rows.length;
    rows.forEach(function (row, r) {
      var line = document.createElement("div");
      line.className = "keyboard-row";
      row.forEach(function (key, c) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "key" + (key.contact ? " contact" : "");
        b.textContent = key.text;
        b.addEventListener("click", function () { act({ action: "keyboard", row: r, column: c }); });
        line.appendChild(b);
      });
      kb.appendChild(line);
    });
  }

  function drawOwner(o) {
    var linked = document.getElementById("file-linked");
    if (linked) { linked.textContent = o.linked ? strings.linked : strings.not_linked; }
    var badge = document.querySelector("#owners a[data-owner='" + o.user_id + "'] .badge");
    if (badge) {
      badge.textContent = o.linked ? strings.linked : strings.not_linked;
      badge.classList.toggle("linked", o.linked);
    }
  }

  function draw(data) {
    var list = document.getElementById("messages");
    var nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.textContent = "";
    if (!data.messages.length) {
      var empty = document.createElement("p");
      empty.className = "phone-empty";
      empty.id = "messages-empty";
      empty.textContent = phone.dataset.empty || "";
      list.appendChild(empty);
    }
    data.messages.forEach(function (m) { list.appendChild(bubble(m)); });
    if (nearBottom || !version) { list.scrollTop = list.scrollHeight; }
    drawKeyboard(data.keyboard);
    drawOwner(data.owner);
    var fresh = data.answers.filter(function (a) { return seenAnswers && !seenAnswers[a.id]; });
    seenAnswers = seenAnswers || {};
    data.answers.forEach(function (a) { seenAnswers[a.id] = true; });
    if (fresh.length) { showToast(fresh[fresh.length - 1].text); }
  }

  function drawClock(clock) {
    var out = document.getElementById("sandbox-time");
    if (!out || !clock) { return; }
    out.textContent = clock.local;
    var day = document.getElementById("sandbox-weekday");
    try {  // the weekday at the dealership, in the page's language
      day.textContent = new Intl.DateTimeFormat(document.documentElement.lang || undefined,
        { weekday: "long", timeZone: clock.tz }).format(new Date(clock.iso));
    } catch (e) { day.textContent = ""; }
  }

  // ---- polling

  function poll() {
    if (polling) { return; }
    polling = true;
    var url = "/sandbox/chat/messages?owner=" + encodeURIComponent(owner) + "&v=" + encodeURIComponent(version);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        drawClock(data.clock);
        if (!data.same) { draw(data); version = data.v; phone.dataset.version = version; }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { polling = false; pollSoon(POLL_MS); });
  }

  function pollSoon(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  // ---- controls

  function moveTime(button) {
    var report = document.getElementById("time-report");
    var buttons = document.querySelectorAll(".time-steps button");
    buttons.forEach(function (b) { b.disabled = true; });
    report.textContent = strings.moving;
    post("/sandbox/chat/time", { step: button.dataset.step }).then(function (data) {
      drawClock(data.clock);
      var r = data.report;
      report.textContent = fmt(strings.moved, { time: data.clock.local, sent: r.sent,
                                                expired: r.expired, skipped: r.skipped })
        + (r.quiet ? " " + strings.quiet : "");
      pollSoon(100);
    }, function (err) {
      report.textContent = fmt(strings.failed, { error: err.message || err });
    }).then(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    phone = document.getElementById("phone");
    if (!phone) { return; }
    owner = phone.dataset.owner;
    strings = JSON.parse(document.getElementById("sandbox-strings").textContent);
    var out = document.getElementById("sandbox-time");
    drawClock({ local: out.textContent, iso: out.dataset.iso, tz: out.dataset.tz });
    var empty = document.getElementById("messages-empty");
    phone.dataset.empty = empty ? empty.textContent : "";
    document.getElementById("composer").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = document.getElementById("composer-text");
      var text = input.value.trim();
      if (!text) { return; }
      input.value = "";
      act({ action: "text", text: text });
    });
    document.getElementById("link-owner").addEventListener("click", function () {
      act({ action: "link" });
    });
    document.querySelectorAll(".time-steps button").forEach(function (b) {
      b.addEventListener("click", function () { moveTime(b); });
    });
    poll();
  });
})();
