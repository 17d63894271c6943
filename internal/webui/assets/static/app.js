// Ironwork web console: follows the events stream and keeps the page current; opens the
// confirmation dialog of the node page's actions. No framework, no build step.
"use strict";

function humanBytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function stepName(s) { return s && s.interface ? s.interface + "." + s.step : ""; }

// fieldText is what a data-field element shows for a node state from the stream.
function fieldText(node, field) {
  switch (field) {
  case "maintenance": return String(!!node.maintenance);
  case "step": return stepName(node.deploy_step) || stepName(node.clean_step);
  case "progress":
    if (!node.progress) return "";
    var t = humanBytes(node.progress.bytes_done) + " written";
    if (node.progress.bytes_total > 0) t += " of " + humanBytes(node.progress.bytes_total);
    return t;
  default: return node[field] == null ? "" : String(node[field]);
  }
}

function setFields(root, node) {
  root.querySelectorAll("[data-field]").forEach(function (el) {
    var t = fieldText(node, el.dataset.field);
    if (el.textContent !== t) el.textContent = t;
  });
}

function follow(path, onNode, onDeleted) {
  var live = document.getElementById("live");
  var es = new EventSource(path);
  es.addEventListener("ready", function () { live.textContent = "live"; live.className = "live on"; });
  es.addEventListener("node", function (e) { onNode(JSON.parse(e.data).node); });
  es.addEventListener("node.deleted", function (e) { if (onDeleted) onDeleted(JSON.parse(e.data).node); });
  es.addEventListener("dropped", function () { live.textContent = "reconnecting"; live.className = "live"; });
  es.onerror = function () { live.textContent = "reconnecting"; live.className = "live"; };
  return es;
}

function fleetPage(events) {
  var states = JSON.parse(document.getElementById("fleet-states").textContent || "{}");
  var note = document.getElementById("fleet-note");
  function recount() {
    var counts = {}, total = 0;
    Object.keys(states).forEach(function (u) { counts[states[u]] = (counts[states[u]] || 0) + 1; total++; });
    var box = document.getElementById("counts");
    box.textContent = "";
    Object.keys(counts).sort().forEach(function (s) {
      var a = document.createElement("a");
      a.className = "count"; a.href = "/ui/?state=" + encodeURIComponent(s); a.dataset.state = s;
      var span = document.createElement("span"); span.className = "state"; span.textContent = s;
      var b = document.createElement("b"); b.textContent = counts[s];
      a.append(span, " ", b); box.append(a);
    });
    document.getElementById("total").textContent = total;
  }
  follow(events, function (node) {
    var isNew = !(node.uuid in states);
    states[node.uuid] = node.provision_state;
    recount();
    var row = document.querySelector('tr[data-uuid="' + CSS.escape(node.uuid) + '"]');
    if (row) setFields(row, node);
    else if (isNew) { note.hidden = false; note.textContent = "New nodes were enrolled: reload to see them."; }
  }, function (node) {
    delete states[node.uuid];
    recount();
    var row = document.querySelector('tr[data-uuid="' + CSS.escape(node.uuid) + '"]');
    if (row) row.classList.add("deleted");
  });
}

function nodePage(events) {
  var head = document.getElementById("node");
  var uuid = head.dataset.uuid;
  var log = document.getElementById("live-log");
  var bar = document.getElementById("progress-bar");
  var last = null;
  follow(events + "?node=" + encodeURIComponent(uuid), function (node) {
    if (node.uuid !== uuid) return;
    setFields(document.querySelector(".summary"), node);
    if (node.progress && node.progress.bytes_total > 0) {
      bar.hidden = false;
      bar.value = Math.floor(100 * node.progress.bytes_done / node.progress.bytes_total);
    } else {
      bar.hidden = true;
    }
    var line = node.provision_state + (node.target_provision_state ? " → " + node.target_provision_state : "") +
      (fieldText(node, "step") ? "  step " + fieldText(node, "step") : "") +
      (node.progress ? "  " + fieldText(node, "progress") : "") +
      "  power " + (node.power_state || "none") + (node.last_error ? "  error: " + node.last_error : "");
    if (line === last) return;
    last = line;
    var li = document.createElement("li");
    var time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    li.append(time, " " + line);
    li.dataset.state = node.provision_state;
    log.append(li);
  }, function () {
    var li = document.createElement("li");
    li.textContent = "the node was deleted";
    log.append(li);
  });

  var dialog = document.getElementById("confirm");
  var form = dialog.querySelector("form");
  document.querySelectorAll("button[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      form.elements.action.value = b.dataset.action;
      document.getElementById("confirm-text").textContent =
        b.textContent + " node " + head.firstChild.textContent.trim() + "?";
      dialog.querySelectorAll("div[data-needs]").forEach(function (d) {
        var on = d.dataset.needs === b.dataset.needs;
        d.hidden = !on;
        d.querySelectorAll("input").forEach(function (i) { i.required = on && i.name === "image_source"; });
      });
      dialog.showModal();
    });
  });
  document.getElementById("confirm-no").addEventListener("click", function () { dialog.close(); });
}

document.addEventListener("DOMContentLoaded", function () {
  var events = document.body.dataset.events;
  if (!events || !window.EventSource) return;
  if (document.getElementById("fleet-states")) fleetPage(events);
  if (document.getElementById("node")) nodePage(events);
});
