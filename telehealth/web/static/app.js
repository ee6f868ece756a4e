/* Telehealth: identifier checks as one types, and live updates. No dependencies. */
(function () {
  "use strict";

  function fieldError(form, name, message) {
    var input = form.elements[name];
    var slot = form.querySelector('[data-error-for="' + name + '"]');
    if (!input || !slot) return;
    slot.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  // The same checks the server makes (telehealth/directory/identifiers.py); the server decides.
  function checkPatient(form, name) {
    var d = form.dataset;
    var v = function (n) { return (form.elements[n] && form.elements[n].value || "").replace(/\s+/g, ""); };
    var msg = "";
    if (name === "national_id" && v("national_id")) {
      var id = v("national_id"), born = v("birth_date"), gender = v("gender");
      if (!/^\d{12}$/.test(id)) msg = d.msgCccdDigits;
      else if (d.provinces.split(" ").indexOf(id.slice(0, 3)) < 0) msg = d.msgCccdProvince;
      else {
        var c = +id[3], century = [1900, 1900, 2000, 2000, 2100, 2100, 2200, 2200, 1800, 1800][c];
        if (born && century + +id.slice(4, 6) !== +born.slice(0, 4)) msg = d.msgCccdYear;
        else if ((gender === "male" && c % 2) || (gender === "female" && !(c % 2))) msg = d.msgCccdGender;
      }
    }
    if (name === "insurance_number" && v("insurance_number") &&
        !/^[A-Z]{2}[1-5]\d{12}$/.test(v("insurance_number").toUpperCase())) msg = d.msgBhyt;
    if (name === "phone" && v("phone") && !/^(\+?84|0)\d{9,10}$/.test(v("phone").replace(/[.\-()]/g, ""))) msg = d.msgPhone;
    if (["full_name", "gender", "birth_date"].indexOf(name) >= 0 && !v(name)) msg = d.msgRequired;
    fieldError(form, name, msg);
    return !msg;
  }

  function watchPatientForm(form) {
    var names = ["full_name", "gender", "birth_date", "national_id", "insurance_number", "phone"];
    names.forEach(function (name) {
      var input = form.elements[name];
      if (!input) return;
      input.addEventListener("input", function () { checkPatient(form, name); if (name !== "national_id") checkPatient(form, "national_id"); });
      input.addEventListener("change", function () { checkPatient(form, name); });
    });
    form.addEventListener("submit", function (event) {
      var ok = names.map(function (n) { return checkPatient(form, n); }).every(Boolean);
      if (!ok) {
        event.preventDefault();
        var bad = form.querySelector('[aria-invalid="true"]');
        if (bad) bad.focus();
      }
    });
  }

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
  }

  var unseen = 0;
  function live(path, label) {
    var delay = 1000;
    function connect() {
      var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
      socket.onmessage = function (event) {
        var data; try { data = JSON.parse(event.data); } catch (e) { return; }
        if (data.kind === "ready") { delay = 1000; document.body.dataset.liveReady = "1"; return; }
        unseen += 1;
        var badge = document.getElementById("live-badge");
        if (badge) { badge.hidden = false; badge.textContent = String(unseen); }
        var labels = {}; try { labels = JSON.parse(document.body.dataset.kindLabels || "{}"); } catch (e) { /* none */ }
        toast(labels[data.kind] || (label + (data.kind ? ": " + data.kind : "")));
        document.dispatchEvent(new CustomEvent("telehealth:update", { detail: data }));
      };
      socket.onclose = function () { delete document.body.dataset.liveReady; setTimeout(connect, delay); delay = Math.min(delay * 2, 60000); };
    }
    connect();
  }

  // ICD-10 picker: suggestions by code or words of the name; picking one adds its code.
  function watchIcd(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var target = document.getElementById(input.dataset.icdTarget);
    var timer = null, seen = {};
    input.addEventListener("input", function () {
      var q = input.value.trim();
      var code = q.split(" ")[0];
      if (seen[q] || (seen[code] && q.indexOf(" — ") > 0)) {
        var codes = target.value.split(/[\s,;]+/).filter(Boolean);
        if (codes.indexOf(code) < 0) codes.push(code);
        target.value = codes.join(", ");
        input.value = "";
        return;
      }
      clearTimeout(timer);
      if (q.length < 2) return;
      timer = setTimeout(function () {
        fetch("/consults/icd10?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (rows) {
            list.textContent = "";
            rows.forEach(function (row) {
              var option = document.createElement("option");
              option.value = row.code + " — " + row.display;
              seen[option.value] = true; seen[row.code] = true;
              list.appendChild(option);
            });
          });
      }, 250);
    });
  }

  // Pages that show a consult or a queue reload when something changes, unless the person
  // is typing into one of its forms.
  function reloadOnUpdate() {
    if (!document.querySelector("[data-reload-on-update]")) return;
    document.addEventListener("telehealth:update", function () {
      var active = document.activeElement;
      if (active && /INPUT|TEXTAREA|SELECT/.test(active.tagName) && active.value) return;
      setTimeout(function () { location.reload(); }, 300);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-icd-target]").forEach(watchIcd);
    document.querySelectorAll('form[data-form="consult"]').forEach(function (form) { form.dataset.ready = "1"; });
    reloadOnUpdate();
    document.querySelectorAll('form[data-validate="patient"]').forEach(function (form) { watchPatientForm(form); form.dataset.ready = "1"; });
    if (document.body.dataset.live) live(document.body.dataset.live, document.body.dataset.liveText);
  });
})();
