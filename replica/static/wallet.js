/* The replica's wallet popup: MetaMask 13's lock screen and signature page for the real request.

   Shape and test ids follow MetaMask's own code and e2e page objects (ui/pages/confirmations/components/
   confirm/info/typed-sign/typed-sign.tsx, ui/pages/confirmations/components/confirm/row/dataTree.tsx,
   ui/components/app/confirm/info/row/row.tsx and copy-icon.tsx, test/e2e/page-objects/pages/confirmations/
   redesign/): a request section (network, "Request from", "Interacting with"), a message section whose
   "Message" row has a copy button (aria-label "copy-button") copying JSON.stringify of the whole typed data,
   a "Primary type" row, then one row per field in the order of the primary type's struct, test id
   `confirmation_data-<field>-index-<i>`, "Label:" then the value; a struct field nests its rows; addresses
   show shortened (0x1234567...abcde, MetaMask's shortenAddress); uint256 values raw (base units).
   A danger alert turns Confirm into "Review alert", which opens the alert modal (acknowledge checkbox,
   then the modal's own confirm). The scroll-to-bottom button is shown but gates nothing. */
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

  function copyIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("aria-hidden", "true");
    [[5, 5, 9, 9], [2, 2, 9, 9]].forEach(function (r) {
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", r[0]); rect.setAttribute("y", r[1]);
      rect.setAttribute("width", r[2]); rect.setAttribute("height", r[3]);
      rect.setAttribute("rx", "1.5"); rect.setAttribute("fill", "none"); rect.setAttribute("stroke", "currentColor");
      svg.appendChild(rect);
    });
    return svg;
  }

  function isAddress(v) { return typeof v === "string" && /^0x[0-9a-fA-F]{40}$/.test(v); }

  function shorten(address) { return address.slice(0, 7) + "..." + address.slice(-5); }

  function header(account) {
    return h("header", {class: "wallet-header"},
      h("span", {class: "fox"}, fox(20)),
      h("span", {class: "network"}, "Polygon Mainnet"),
      h("span", {class: "account", "data-testid": "header-account-name"},
        account ? account.name + " · " + shorten(account.address) : "Account 1"));
  }

  function show(node, account) { app.textContent = ""; app.appendChild(header(account)); app.appendChild(node); }

  function closeSoon(text) {
    show(h("div", {class: "done"}, h("p", {}, text)));
    setTimeout(function () { window.close(); }, 150);
  }

  /* Like the copy-to-clipboard package MetaMask uses: select a hidden span, execCommand("copy"), and set
     the text on the copy event (no clipboard permission needed for a click). */
  function copyText(text) {
    var mark = h("span", {class: "copy-mark"}, text);
    mark.addEventListener("copy", function (ev) {
      ev.stopPropagation();
      ev.preventDefault();
      ev.clipboardData.clearData();
      ev.clipboardData.setData("text/plain", text);
    });
    document.body.appendChild(mark);
    var range = document.createRange();
    range.selectNodeContents(mark);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { document.execCommand("copy"); } finally {
      sel.removeAllRanges();
      document.body.removeChild(mark);
    }
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

  /* One ConfirmInfoRow: "Label" then the value (text, an address, or nested rows). */
  function infoRow(label, value, attrs) {
    return h("div", Object.assign({class: "confirm-info-row"}, attrs || {}),
      h("p", {class: "confirm-info-row__label"}, label), value);
  }

  function addressValue(address) {
    return h("div", {class: "confirm-info-row__address", title: address},
      h("span", {class: "avatar", "aria-hidden": "true"}),
      h("p", {"data-testid": "confirm-info-row-display-name"}, shorten(address)));
  }

  function fieldValue(value, type, types) {
    if (types[type] && value && typeof value === "object") return dataTree(value, types[type], types);
    if (type === "address" && isAddress(value)) return addressValue(value);
    return h("p", {class: "confirm-info-row__text"}, String(value));
  }

  /* MetaMask's DataTree: the struct's fields in its type's order (sanitizeMessage), index i in that order. */
  function dataTree(message, fields, types) {
    var box = h("div", {class: "data-tree"});
    fields.forEach(function (f, i) {
      if (!(f.name in message)) return;
      var label = f.name.charAt(0).toUpperCase() + f.name.slice(1) + ":";
      box.appendChild(infoRow(label, fieldValue(message[f.name], f.type, types),
        {"data-testid": "confirmation_data-" + f.name + "-index-" + i}));
    });
    return box;
  }

  function originText(origin) {
    var http = /^http:/i.test(origin);
    return h("div", {class: "origin-value"},
      http ? h("span", {class: "http-badge"}, "HTTP") : null,
      h("p", {"data-testid": "confirmation__details-origin", class: "origin"}, origin.replace(/^https?:\/\//i, "")));
  }

  function requestSection(r) {
    var rows = [infoRow("Network", h("p", {"data-testid": "confirmation__details-network-name"}, "Polygon Mainnet")),
      infoRow("Request from", originText(r.origin))];
    var contract = r.typed && r.typed.domain && r.typed.domain.verifyingContract;
    if (isAddress(contract)) rows.push(infoRow("Interacting with", addressValue(contract)));
    if (r.transaction) {
      rows.push(infoRow("To", addressValue(r.transaction.to)));
      rows.push(infoRow("Amount", h("p", {"data-testid": "confirmation__transfer-amount"},
        r.transaction.amount + " " + r.transaction.token)));
    }
    return h.apply(null, ["section", {class: "confirm-section", "data-testid": "confirmation_request-section"}]
      .concat(rows));
  }

  function messageSection(typed) {
    var copy = h("button", {type: "button", class: "copy-button", "aria-label": "copy-button", title: "Copy",
      onclick: function () { copyText(JSON.stringify(typed)); copy.classList.add("copied"); }}, copyIcon());
    var fields = (typed.types || {})[typed.primaryType] || [];
    var body = h("div", {class: "message-body"},
      infoRow("Primary type:", h("p", {"data-testid": "confirmation__message-primary-type"}, String(typed.primaryType))),
      dataTree(typed.message || {}, fields, typed.types || {}));
    return h("section", {class: "confirm-section", "data-testid": "confirmation_message-section"},
      h("div", {class: "confirm-info-row message-row"}, copy, h("p", {class: "confirm-info-row__label"}, "Message"),
        body));
  }

  function alertModal(text, onSubmit) {
    var submit = h("button", {type: "button", class: "btn-primary", disabled: true,
      "data-testid": "confirm-alert-modal-submit-button", onclick: function () { onSubmit(); }}, "Confirm");
    var check = h("input", {type: "checkbox", id: "alert-ack", "data-testid": "alert-modal-acknowledge-checkbox",
      onchange: function () { submit.disabled = !check.checked; }});
    var modal = h("div", {class: "modal-backdrop", hidden: true, "data-testid": "alert-modal"},
      h("div", {class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "alert-title"},
        h("h3", {id: "alert-title", class: "danger"}, "Your assets may be at risk"),
        h("p", {"data-testid": "alert-modal__selected-alert"}, text),
        h("label", {class: "ack"}, check, " I have acknowledged the risk and still want to proceed"),
        h("div", {class: "confirm-footer"},
          h("button", {type: "button", class: "btn-secondary", "data-testid": "confirm-alert-modal-cancel-button",
            onclick: function () { modal.hidden = true; }}, "Cancel"),
          submit)));
    return modal;
  }

  function renderRequest(r) {
    var status = h("p", {class: "confirm-status", role: "alert", hidden: true});
    var buttons = {};
    var modal = r.alert ? alertModal(r.alert, function () { act("confirm", buttons, status); }) : null;
    buttons.cancel = h("button", {type: "button", class: "btn-secondary", "data-testid": r.cancel_id,
      onclick: function () { act("reject", buttons, status); }}, "Cancel");
    buttons.confirm = h("button", {type: "button", class: r.alert ? "btn-danger" : "btn-primary",
      "data-testid": "confirm-footer-button",
      onclick: function () { if (modal) { modal.hidden = false; return; } act("confirm", buttons, status); }},
      r.alert ? "Review alert" : "Confirm");
    var page = h("div", {class: "confirm-page"},
      r.alert ? h("div", {class: "banner-alert danger", role: "alert"},
        h("strong", {}, "Deceptive request"), h("p", {}, r.alert)) : null,
      h("h2", {"data-testid": "confirm-title-text", class: "confirm-title"}, r.title),
      h("p", {"data-testid": "confirm-title-description", class: "muted"},
        "Review request details before you confirm."),
      requestSection(r),
      r.typed ? messageSection(r.typed) : null,
      status);
    var scroll = h("button", {type: "button", class: "confirm-scroll-to-bottom__button", "aria-label": "Scroll down",
      onclick: function () { page.scrollTop = page.scrollHeight; scroll.hidden = true; }}, "↓");
    show(h("div", {class: "confirm-wrap"}, page, scroll,
      h("footer", {class: "confirm-footer"}, buttons.cancel, buttons.confirm), modal), r.account);
  }

  function act(what, buttons, status) {
    buttons.cancel.disabled = true;
    buttons.confirm.disabled = true;
    post("/wallet/api/" + what, {id: requestId}).then(function (ans) {
      if (ans.ok) { closeSoon(what === "confirm" ? "Signed." : "Request rejected."); return; }
      if (ans._status === 409 && /locked/i.test(ans.error || "")) { load(); return; }
      status.textContent = ans.error || "The wallet request failed";
      status.hidden = false;
    }, function (err) {
      status.textContent = "The wallet request failed: " + err;
      status.hidden = false;
      buttons.cancel.disabled = false;
      buttons.confirm.disabled = false;
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
