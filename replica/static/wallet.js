/* The replica's wallet popup: lock screen, then the signature request, with MetaMask's test ids. */
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var requestId = params.get("request") || "";
  var app = document.getElementById("app");

  var h = window.replicaDom.h;

  function post(path, body) {
    return fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { j._status = r.status; return j; }); });
  }

  function fox(size) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 32 32");
    svg.setAttribute("width", size);
    svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true");
    var poly = document.createElementNS(ns, "polygon");
    poly.setAttribute("points", "2,3 13,10 19,10 30,3 27,17 22,27 16,30 10,27 5,17");
    poly.setAttribute("fill", "#f6851b");
    svg.appendChild(poly);
    return svg;
  }

  function header() {
    return h("header", {class: "wallet-header"},
      h("span", {class: "fox"}, fox(20)),
      h("span", {class: "network"}, "Polygon Mainnet"),
      h("span", {class: "account"}, "Account 1 · 0x7a3…c91e"));
  }

  function show(node) { app.textContent = ""; app.appendChild(header()); app.appendChild(node); }

  function closeSoon(text) {
    show(h("div", {class: "done"}, h("p", {}, text)));
    setTimeout(function () { window.close(); }, 150);
  }

  function renderLock() {
    var error = h("p", {class: "unlock-error", "data-testid": "unlock-error", role: "alert", hidden: true});
    var input = h("input", {type: "password", id: "password", "data-testid": "unlock-password",
      autocomplete: "current-password", placeholder: "Password", "aria-label": "Password"});
    var button = h("button", {type: "submit", class: "btn-primary", "data-testid": "unlock-submit"}, "Unlock");
    var form = h("form", {class: "unlock-form", onsubmit: function (ev) {
      ev.preventDefault();
      button.disabled = true;
      post("/wallet/api/unlock", {password: input.value}).then(function (ans) {
        button.disabled = false;
        if (ans.ok) { load(); return; }
        input.value = "";
        error.textContent = ans.error || "Incorrect password";
        error.hidden = false;
      }, function (err) {
        button.disabled = false;
        error.textContent = "Unlock failed: " + err;
        error.hidden = false;
      });
    }}, h("label", {for: "password"}, "Password"), input, error, button);
    show(h("div", {class: "unlock-page"}, h("div", {class: "big-fox"}, fox(72)),
      h("h1", {}, "Welcome back!"), h("p", {class: "muted"}, "The decentralized web awaits"), form));
    input.focus();
  }

  function renderRequest(r) {
    var rows = h("div", {class: "confirmation-data"});
    Object.keys(r.fields).forEach(function (k) {
      rows.appendChild(h("div", {class: "confirmation-data-row", "data-testid": "confirmation_data-" + k},
        h("span", {class: "confirmation-data-label"}, k + ":"),
        h("span", {class: "confirmation-data-value"}, String(r.fields[k]))));
    });
    var status = h("p", {class: "confirm-status", role: "alert", hidden: true});
    var cancel = h("button", {type: "button", class: "btn-secondary", "data-testid": "confirm-footer-cancel-button",
      onclick: function () { act("reject", cancel, confirm, status); }}, "Cancel");
    var confirm = h("button", {type: "button", class: "btn-primary", "data-testid": "confirm-footer-button",
      onclick: function () { act("confirm", cancel, confirm, status); }}, "Confirm");
    show(h("div", {class: "confirm-page"},
      h("h2", {"data-testid": "confirm-title-text", class: "confirm-title"}, r.title),
      h("p", {class: "muted"}, "Only confirm this message if you approve its content and trust the requesting site."),
      h("section", {class: "confirmation-details"},
        h("div", {class: "detail-row"}, h("span", {class: "label"}, "Request from"),
          h("span", {"data-testid": "confirmation__details-origin", class: "origin"}, r.origin)),
        h("div", {class: "detail-row"}, h("span", {class: "label"}, "Interacting with"),
          h("span", {class: "contract"}, "CTF Exchange 0x4bFb…982E"))),
      h("section", {class: "message"}, h("h3", {}, "Message"), rows),
      status,
      h("footer", {class: "confirm-footer"}, cancel, confirm)));
  }

  function act(what, cancel, confirm, status) {
    cancel.disabled = true;
    confirm.disabled = true;
    post("/wallet/api/" + what, {id: requestId}).then(function (ans) {
      if (ans.ok) { closeSoon(what === "confirm" ? "Signed." : "Request rejected."); return; }
      if (ans._status === 409 && /locked/i.test(ans.error || "")) { load(); return; }
      status.textContent = ans.error || "The wallet request failed";
      status.hidden = false;
    }, function (err) {
      status.textContent = "The wallet request failed: " + err;
      status.hidden = false;
      cancel.disabled = false;
      confirm.disabled = false;
    });
  }

  function load() {
    fetch("/wallet/api/request?id=" + encodeURIComponent(requestId), {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (v) {
        if (v.locked) { renderLock(); return; }
        if (!v.request) { show(h("div", {class: "empty"}, h("p", {}, "No pending requests."))); return; }
        requestId = v.request.id;
        if (v.request.status !== "pending") {
          show(h("div", {class: "empty"}, h("p", {}, "This request is " + v.request.status + ".")));
          return;
        }
        renderRequest(v.request);
      }, function (err) {
        show(h("div", {class: "empty"}, h("p", {}, "The wallet could not load the request: " + err)));
      });
  }

  load();
})();
