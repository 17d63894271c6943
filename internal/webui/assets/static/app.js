// Ironwork web console: follows the events stream and keeps the page current; opens the
// confirmation dialog of the node page's actions; connects the node page's terminal to the
// node's serial console websocket. No framework, no build step.
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

function follow(path, onNode, onDeleted, onReady) {
  var live = document.getElementById("live");
  var es = new EventSource(path);
  es.addEventListener("ready", function () {
    if (onReady) onReady();
    live.textContent = "live"; live.className = "live on";
  });
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
  var term = serialConsole(uuid);
  follow(events + "?node=" + encodeURIComponent(uuid), function (node) {
    if (node.uuid !== uuid) return;
    if (term) term.enabled(!!node.console_enabled);
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
  }, function () { if (term) term.sync(); });

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

// keyBytes is what a key sends down a serial line, as a terminal would ("" for none).
function keyBytes(e) {
  if (e.ctrlKey && !e.altKey && !e.metaKey && e.key.length === 1) {
    var c = e.key.toUpperCase().charCodeAt(0);
    if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
    return "";
  }
  if (e.metaKey) return "";
  switch (e.key) {
  case "Enter": return "\r";
  case "Backspace": return "\x7f";
  case "Tab": return "\t";
  case "Escape": return "\x1b";
  case "ArrowUp": return "\x1b[A";
  case "ArrowDown": return "\x1b[B";
  case "ArrowRight": return "\x1b[C";
  case "ArrowLeft": return "\x1b[D";
  case "Home": return "\x1b[H";
  case "End": return "\x1b[F";
  case "Delete": return "\x1b[3~";
  }
  return e.key.length === 1 ? e.key : "";
}

// termLimit is how many characters the terminal keeps; older output is dropped.
var termLimit = 200000;

// serialConsole wires the node page's console section: Connect opens the websocket of
// /v1/nodes/{uuid}/console/ws (same origin and credentials as the page), what the node prints
// is appended to the <pre>, keys typed in it (and pasted text) are sent to the node, and
// Disconnect closes it. It returns null when the node has no console.
function serialConsole(uuid) {
  var pre = document.getElementById("console-term");
  if (!pre) return null;
  var connect = document.getElementById("console-connect");
  var disconnect = document.getElementById("console-disconnect");
  var status = document.getElementById("console-status");
  var flag = document.getElementById("console-enabled");
  var on = flag.textContent === "true";
  var ws = null;
  var decoder = null;
  function say(text, cls) { status.textContent = text; status.className = cls || "note"; }
  function buttons() {
    connect.disabled = !on || ws !== null;
    disconnect.disabled = ws === null;
  }
  function show(text) {
    // A plain terminal: drop escape sequences and carriage returns, apply backspaces.
    text = text.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/\x1b[()][0-9A-Za-z]/g, "").replace(/\r/g, "");
    var cur = pre.textContent;
    for (var i = 0; i < text.length; i++) {
      var ch = text[i];
      if (ch === "\b" || ch === "\x7f") cur = cur.slice(0, -1);
      else if (ch === "\x07") continue;
      else cur += ch;
    }
    if (cur.length > termLimit) cur = cur.slice(cur.length - termLimit);
    pre.textContent = cur;
    pre.scrollTop = pre.scrollHeight;
  }
  function open() {
    if (ws || !on) return;
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var url = proto + "//" + location.host + "/v1/nodes/" + encodeURIComponent(uuid) + "/console/ws";
    var sock = new WebSocket(url);
    sock.binaryType = "arraybuffer";
    decoder = new TextDecoder("utf-8");
    ws = sock;
    var opened = false;
    say("connecting…");
    buttons();
    sock.onopen = function () { opened = true; say("connected: click the terminal and type", "ok"); pre.focus(); };
    sock.onmessage = function (e) {
      show(typeof e.data === "string" ? e.data : decoder.decode(new Uint8Array(e.data), {stream: true}));
    };
    sock.onclose = function (e) {
      if (ws === sock) ws = null;
      if (!opened) say("The console could not be opened: it is disabled, not served now, or in use (see the node's last error). Reload to retry.", "error");
      else say("disconnected" + (e.reason ? ": " + e.reason : ""));
      buttons();
    };
  }
  connect.addEventListener("click", open);
  disconnect.addEventListener("click", function () { if (ws) ws.close(1000, "disconnect"); });
  pre.addEventListener("keydown", function (e) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    var b = keyBytes(e);
    if (b === "") return;
    e.preventDefault();
    ws.send(b);
  });
  pre.addEventListener("paste", function (e) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    e.preventDefault();
    ws.send(e.clipboardData.getData("text").replace(/\r?\n/g, "\r"));
  });
  buttons();
  var self = {
    // sync reads the console's mode from the API: a change made between the page's rendering
    // and the stream's start is in neither.
    sync: function () {
      fetch("/v1/nodes/" + encodeURIComponent(uuid) + "/states/console",
        {headers: {"X-OpenStack-Ironic-API-Version": "latest"}, credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) { if (st) self.enabled(!!st.console_enabled); })
        .catch(function () {});
    },
    enabled: function (v) {
      if (v === on) return;
      on = v;
      flag.textContent = String(v);
      if (!v) {
        if (ws) ws.close(1000, "console disabled");
        say("The console is disabled: enable it to connect.");
      } else if (!ws) {
        say("not connected");
      }
      buttons();
    },
  };
  return self;
}

document.addEventListener("DOMContentLoaded", function () {
  var events = document.body.dataset.events;
  if (!events || !window.EventSource) return;
  if (document.getElementById("fleet-states")) fleetPage(events);
  if (document.getElementById("node")) nodePage(events);
});
