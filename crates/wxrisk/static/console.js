// wxrisk console: a little behaviour on top of pages that work without it. Loaded with `defer`; no inline script
// anywhere (the CSP forbids it), so everything hangs on data-* attributes.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // A form is sent once: its buttons are disabled while it goes (double clicks do nothing twice; the server's
  // idempotency keys are the real guard).
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var message = form.getAttribute("data-confirm");
      if (message && !window.confirm(message)) {
        event.preventDefault();
        return;
      }
      if (form.dataset.sent === "1") {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
        button.disabled = true;
      });
    });
  });

  // Character counters: <textarea data-max="200"> with a sibling .counter.
  document.querySelectorAll("[data-max]").forEach(function (field) {
    var max = parseInt(field.getAttribute("data-max"), 10);
    var counter = document.createElement("div");
    counter.className = "counter";
    field.insertAdjacentElement("afterend", counter);
    var update = function () {
      var length = Array.from(field.value).length;
      counter.textContent = length + " / " + max;
      counter.classList.toggle("over", length > max);
    };
    field.addEventListener("input", update);
    update();
  });

  // Copy buttons: <button data-copy="#id">.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = button.getAttribute("data-copied") || "✓";
      }
    });
  });

  // Live previews: <form data-preview="/path" data-preview-target="#id">: the form's fields are posted as they
  // change, and the answer (HTML made by the server, escaped there) replaces the target's content.
  document.querySelectorAll("form[data-preview]").forEach(function (form) {
    var target = document.querySelector(form.getAttribute("data-preview-target"));
    if (!target) return;
    var timer = null;
    var refresh = function () {
      var body = new URLSearchParams(new FormData(form));
      fetch(form.getAttribute("data-preview"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      })
        .then(function (response) { return response.text(); })
        .then(function (html) { target.innerHTML = html; })
        .catch(function () {});
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
  });
});

// --- Sub-merchants and channels (issue 11, pages 5 and 7's channels) ---
// An email preset fills in its SMTP host, port and security (the server applies the preset anyway).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-preset]").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var form = select.form;
      if (!option || !form || !option.dataset.host) return;
      var set = function (name, value) {
        var field = form.querySelector('[name="' + name + '"]');
        if (field) field.value = value;
      };
      set("s.host", option.dataset.host);
      set("s.port", option.dataset.port);
      set("s.security", option.dataset.security);
    });
  });
});
