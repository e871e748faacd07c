// procctl ui: live rows and history (server-sent events), countdowns, and the actions
// (resume, cancel, retry) posted as JSON with the page's token. No framework; every value
// from a process is set as text (textContent), never as markup.
"use strict";

(function () {
  const TOKEN = (document.querySelector('meta[name="procctl-token"]') || {}).content || "";
  const TERMINAL = ["completed", "failed", "cancelled"];
  const MAX_LIVE_ROWS = 200;

  // -- helpers -------------------------------------------------------------------------

  function text(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    return JSON.stringify(value, null, 2);
  }

  function el(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function link(href, content) {
    const a = el("a", "", content);
    a.href = href;
    return a;
  }

  function instanceHref(id) {
    return "/instances/" + encodeURIComponent(id);
  }

  function localTime(iso) {
    if (!iso) return "-";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function elapsed(start, end) {
    if (!start || !end) return "-";
    const seconds = (new Date(end) - new Date(start)) / 1000;
    return seconds < 60 ? seconds.toFixed(2) + "s" : (seconds / 60).toFixed(1) + "m";
  }

  function setStatus(node, status) {
    node.textContent = status;
    node.dataset.status = status;
    for (const name of Array.from(node.classList)) {
      if (name.startsWith("status-")) node.classList.remove(name);
    }
    node.classList.add("status-" + status);
  }

  function errorNote(summary) {
    const error = summary.error;
    if (!error || summary.status === "completed" || typeof error !== "object") return "";
    const message = String(error.message || error.reason || "");
    return error.step_id ? error.step_id + ": " + message : message;
  }

  // -- countdowns ----------------------------------------------------------------------

  function span(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m) return m + "m " + String(r).padStart(2, "0") + "s";
    return r + "s";
  }

  function tick() {
    const now = Date.now();
    for (const node of document.querySelectorAll("time.countdown")) {
      const at = new Date(node.getAttribute("datetime")).getTime();
      if (isNaN(at)) continue;
      const left = (at - now) / 1000;
      node.textContent = left >= 0 ? "in " + span(left) : span(-left) + " ago";
      node.classList.toggle("past", left < 0);
    }
  }

  // -- live events ---------------------------------------------------------------------

  function listen(since, onInstance) {
    if (!window.EventSource) return null;
    const url = "/events" + (since ? "?since=" + encodeURIComponent(since) : "");
    const source = new EventSource(url);
    const badge = document.getElementById("live");
    source.addEventListener("open", () => { if (badge) badge.hidden = false; });
    source.addEventListener("error", () => { if (badge) badge.hidden = true; });
    source.addEventListener("instance", (event) => {
      let summary;
      try { summary = JSON.parse(event.data); } catch (e) { return; }
      if (summary && typeof summary.instance_id === "string") onInstance(summary);
    });
    return source;
  }

  // the instances page: rows change as their instances do; new ones come in at the top
  function liveInstances(table) {
    const body = table.tBodies[0];
    const wanted = table.dataset;
    const takesNew = wanted.live === "yes" && !wanted.filterCorrelation && !wanted.filterTime;
    listen(wanted.since, (s) => {
      const row = body.querySelector('tr[data-instance-id="' + CSS.escape(s.instance_id) + '"]');
      if (row) {
        fillRow(row, s);
        return;
      }
      if (!takesNew) return;
      if (wanted.filterStatus && wanted.filterStatus !== s.status) return;
      if (wanted.filterProcess && wanted.filterProcess !== s.process) return;
      body.insertBefore(newRow(s), body.firstChild);
      const empty = document.querySelector("p.empty");
      if (empty) empty.hidden = true;
      while (body.rows.length > MAX_LIVE_ROWS) body.deleteRow(-1);
    });
  }

  // the paused page: a row whose instance no longer waits says what it is now
  function livePaused(table) {
    listen(table.dataset.since, (s) => {
      const row = table.querySelector('tr[data-instance-id="' + CSS.escape(s.instance_id) + '"]');
      if (!row || s.status === "paused") return;
      row.classList.add("done");
      row.dataset.status = s.status;
      const cell = row.querySelector("td.resume");
      if (cell) cell.textContent = "now " + s.status;
      for (const button of row.querySelectorAll("button")) button.disabled = true;
    });
  }

  function fillRow(row, s) {
    setStatus(row.querySelector(".status"), s.status);
    row.querySelector(".duration").textContent = elapsed(s.started_at, s.ended_at);
    row.querySelector(".note").textContent = errorNote(s);
    row.classList.add("changed");
  }

  function newRow(s) {
    const row = document.createElement("tr");
    row.dataset.instanceId = s.instance_id;
    const id = el("td", "id");
    id.appendChild(link(instanceHref(s.instance_id), s.instance_id));
    const process = el("td", "process", (s.parent_id ? "↳ " : "") + s.process);
    const status = el("td", "status");
    setStatus(status, s.status);
    const when = el("td", "when");
    const time = el("time", "", localTime(s.started_at));
    time.setAttribute("datetime", s.started_at || "");
    when.appendChild(time);
    const parent = el("td", "parent");
    if (s.parent_id) parent.appendChild(link(instanceHref(s.parent_id), s.parent_id));
    row.append(id, process, status, when, el("td", "duration", elapsed(s.started_at, s.ended_at)),
      parent, el("td", "note", errorNote(s)));
    row.classList.add("changed");
    return row;
  }

  // the instance page: its status, end, result and history follow the instance
  function liveInstance(box) {
    const id = box.dataset.instanceId;
    let busy = false, again = false;

    async function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const after = box.dataset.lastEvent || "0";
        const response = await fetch(instanceHref(id) + "/history?after=" + encodeURIComponent(after),
          { headers: { "X-Procctl-Token": TOKEN }, credentials: "same-origin" });
        if (response.ok) {
          const found = await response.json();
          appendHistory(found.events || []);
          showStatus(found.status);
        }
      } catch (e) {
        // the next event or action tries again
      } finally {
        busy = false;
        if (again) { again = false; refresh(); }
      }
    }

    box.refresh = refresh;
    listen(box.dataset.since, (s) => {
      if (s.instance_id !== id) return;
      showSummary(s);
      refresh();
    });
  }

  function appendHistory(events) {
    const table = document.getElementById("history");
    const box = document.getElementById("instance");
    if (!table || !box) return;
    const body = table.tBodies[0];
    for (const ev of events) {
      if (body.querySelector('tr[data-event-id="' + CSS.escape(String(ev.id)) + '"]')) continue;
      const row = document.createElement("tr");
      row.dataset.eventId = String(ev.id);
      row.className = "event-" + ev.kind + " changed";
      const when = el("td", "when");
      const time = el("time", "", ev.when);
      time.setAttribute("datetime", ev.at);
      when.appendChild(time);
      row.append(when, el("td", "kind", ev.kind), el("td", "step", ev.step_id || ""),
        el("td", "detail", ev.detail));
      body.appendChild(row);
      box.dataset.lastEvent = String(ev.id);
    }
    const note = document.getElementById("history-note");
    if (note && events.length) note.textContent = body.rows.length + " events shown.";
  }

  function showStatus(status) {
    const node = document.getElementById("status");
    if (!node || !status || node.dataset.status === status) return;
    setStatus(node, status);
    const reason = document.getElementById("reason");
    if (reason) reason.textContent = "now " + status + " (reload the page for the whole picture)";
    if (status !== "paused") {
      // a resume form of an instance that no longer waits would only be refused
      for (const button of document.querySelectorAll("form.resume-form button[type=submit]")) {
        button.disabled = true;
      }
    }
    if (TERMINAL.includes(status)) {
      for (const button of document.querySelectorAll("button.cancel")) button.disabled = true;
    }
  }

  function showSummary(s) {
    showStatus(s.status);
    const ended = document.getElementById("ended");
    if (ended && s.ended_at) ended.textContent = localTime(s.ended_at) + " (after " +
      elapsed(s.started_at, s.ended_at) + ")";
    if (s.status === "completed") {
      const result = document.getElementById("live-result");
      if (result) {
        result.querySelector("pre").textContent = text(s.result);
        result.hidden = false;
      }
    }
    if (s.error) {
      const error = document.getElementById("live-error");
      if (error) {
        error.querySelector("pre").textContent = text(s.error);
        error.hidden = false;
      }
    }
  }

  // -- actions -------------------------------------------------------------------------

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Procctl-Token": TOKEN },
      body: JSON.stringify(body),
    });
    let answer;
    try {
      answer = await response.json();
    } catch (e) {
      answer = { ok: false, message: "The server answered " + response.status + " " +
        response.statusText + " (not JSON)." };
    }
    if (typeof answer !== "object" || answer === null) answer = { ok: false, message: String(answer) };
    if (!response.ok) answer.ok = false;
    return answer;
  }

  function say(node, answer) {
    if (!node) return;
    let line = text(answer.message || (answer.ok ? "Done." : "Refused."));
    if (answer.hint) line += " " + text(answer.hint);
    node.textContent = line;
    node.classList.toggle("ok", !!answer.ok);
    node.classList.toggle("error", !answer.ok);
  }

  // a form field's value as its type asks; throws Error(message) for one that does not fit
  function fieldValue(input) {
    const name = input.name, type = input.dataset.type, raw = input.value.trim();
    if (raw === "") {
      if (input.dataset.optional === "yes") return undefined;
      throw new Error(name + " is required (" + type + ")");
    }
    switch (type) {
      case "bool":
        if (/^(true|false)$/i.test(raw)) return raw.toLowerCase() === "true";
        throw new Error(name + " must be true or false, not " + JSON.stringify(raw));
      case "int":
        if (/^[-+]?\d+$/.test(raw)) return Number(raw);
        throw new Error(name + " must be a whole number, not " + JSON.stringify(raw));
      case "float": {
        const n = Number(raw);
        if (isFinite(n)) return n;
        throw new Error(name + " must be a number, not " + JSON.stringify(raw));
      }
      case "list": case "dict": case "object": {
        let value;
        try { value = JSON.parse(raw); } catch (e) {
          throw new Error(name + " must be JSON (" + type + "): " + e.message);
        }
        const isList = Array.isArray(value);
        const isDict = value !== null && typeof value === "object" && !isList;
        if (type === "list" ? !isList : !isDict) {
          throw new Error(name + " must be a JSON " + (type === "list" ? "list [...]" : "object {...}"));
        }
        return value;
      }
      case "any":
        try { return JSON.parse(raw); } catch (e) { return input.value; }
      default:
        return input.value;
    }
  }

  function payloadOf(form) {
    let payload = {};
    for (const input of form.querySelectorAll("[data-type]")) {
      input.removeAttribute("aria-invalid");
      let value;
      try {
        value = fieldValue(input);
      } catch (e) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
        throw e;
      }
      if (value === undefined) continue;
      if (input.dataset.type === "object") payload = Object.assign(value, payload);
      else payload[input.name] = value;
    }
    return payload;
  }

  async function resume(form) {
    const outcome = form.querySelector(".outcome");
    let payload;
    try {
      payload = payloadOf(form);
    } catch (e) {
      say(outcome, { ok: false, message: "Not sent: " + e.message + "." });
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    outcome.classList.remove("ok", "error");
    outcome.textContent = "Sending…";
    try {
      const answer = await post("/api/resume", { correlation_id: form.dataset.correlationId, payload });
      say(outcome, answer);
      if (answer.field) {
        const input = form.querySelector('[name="' + CSS.escape(String(answer.field)) + '"]');
        if (input) input.setAttribute("aria-invalid", "true");
      }
      if (!answer.ok) button.disabled = false;
      settled(form, answer);
    } catch (e) {
      say(outcome, { ok: false, message: "Not sent: " + e.message });
      button.disabled = false;
    }
  }

  async function act(button, path, question, extra) {
    if (!window.confirm(question)) return;
    const box = button.closest(".actions, td, tr") || document;
    const outcome = box.querySelector(".action-outcome");
    button.disabled = true;
    if (outcome) { outcome.classList.remove("ok", "error"); outcome.textContent = "Sending…"; }
    try {
      const answer = await post(path, Object.assign({ instance_id: button.dataset.instanceId }, extra));
      say(outcome, answer);
      if (!answer.ok) button.disabled = false;
      settled(button, answer);
    } catch (e) {
      say(outcome, { ok: false, message: "Not sent: " + e.message });
      button.disabled = false;
    }
  }

  // after an action: the instance page catches up at once; a paused row shows its new state
  function settled(node, answer) {
    const box = document.getElementById("instance");
    if (box && box.refresh) box.refresh();
    if (answer.instance && typeof answer.instance === "object") {
      if (box) showSummary(answer.instance);
      const row = node.closest("tr[data-instance-id]");
      if (row && answer.instance.status && answer.instance.status !== "paused") {
        row.classList.add("done");
        row.dataset.status = answer.instance.status;
      }
    }
  }

  function wireActions() {
    document.addEventListener("submit", (event) => {
      const form = event.target;
      if (form instanceof HTMLFormElement && form.classList.contains("resume-form")) {
        event.preventDefault();
        resume(form);
      }
    });
    document.addEventListener("click", (event) => {
      const button = event.target instanceof Element ? event.target.closest("button") : null;
      if (!button || button.disabled) return;
      const id = button.dataset.instanceId;
      if (button.classList.contains("cancel")) {
        const input = button.parentElement.querySelector(".cancel-reason");
        const reason = input ? input.value.trim() : "";
        act(button, "/api/cancel", "Cancel instance " + id + " for good? It will not run again.",
          { reason: reason || null });
      } else if (button.classList.contains("retry")) {
        act(button, "/api/retry", "Retry instance " + id + "?", {});
      }
    });
  }

  // -- start ---------------------------------------------------------------------------

  function start() {
    wireActions();
    tick();
    if (document.querySelector("time.countdown")) window.setInterval(tick, 1000);
    const table = document.getElementById("instances");
    if (table) liveInstances(table);
    const box = document.getElementById("instance");
    if (box) liveInstance(box);
    const paused = document.getElementById("paused");
    if (paused) livePaused(paused);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
