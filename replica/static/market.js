/* The replica's market site (hub, event page, portfolio), laid out as the 2026 site is documented
   (../shared/design/real-site-notes.md, "Trade panel markup"). Renders from window.REPLICA and
   keeps itself live by polling /api/state (with ?slug= on an event page). */
(function () {
  "use strict";
  var R = window.REPLICA;
  var state = R.state;
  var offset = state.now - Date.now() / 1000;
  var h = window.replicaDom.h;
  var structureKey = "";
  var tablesKey = "";
  var polling = false;
  var pending = null;      // the page's wallet request in flight: "starting" | request id
  var walletWin = null;
  var watching = {};
  var els = {};            // page-level elements (ptb slot, countdown, tables...)
  var copies = [newCopy("main"), newCopy("sheet")];   // the visible widget and its hidden copy

  var NORMAL = {widgetId: "trade-widget", outcomesId: "outcome-buttons", amountId: "market-order-amount-input",
    btn: "trading-button", wrapperAttr: "data-trading-button-wrapper", toast: "toast", ptbValue: "text-heading-2xl"};
  var VARIANT = {widgetId: "trade-panel", outcomesId: "outcome-picker", amountId: "order-amount",
    btn: "trade-btn", wrapperAttr: "data-submit-row", toast: "notice", ptbValue: "ptb-value"};

  function now() { return Date.now() / 1000 + offset; }
  function isVariant() { return !!(R.overrides.variant || state.variant); }
  function C() { return isVariant() ? VARIANT : NORMAL; }
  function cents(p) { return Math.round(p * 100) + "¢"; }
  function usd(x) { return "$" + Number(x).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}); }
  function usd4(x) { return "$" + Number(x).toFixed(4); }
  function priceUsd(x) {
    return "$" + Number(x).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: x < 100 ? 4 : 2});
  }
  function fmtLeft(s) {
    s = Math.max(0, Math.ceil(s));
    var m = Math.floor(s / 60), r = s % 60;
    return (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
  }
  function windowLabel() {
    var w = state.window_seconds;
    return w % 60 === 0 ? (w / 60) + " min" : w + " s";
  }
  function eventHref(slug) { return "/event/" + slug; }
  function liveSlug() {   // the window live now, by the clock (the same grid as the slugs)
    var w = state.window_seconds;
    return R.event.slug.replace(/\d+$/, String(Math.floor(now() / w) * w));
  }
  function sideName(side) { return side === "UP" ? "Up" : "Down"; }

  /* ---- faults: one-shot ones came with the page (R.overrides), persistent ones with each poll ---- */
  function fault(kind) {
    if (R.overrides[kind]) return true;
    var who = (state.page_faults || {})[kind];
    return !!who && (who === "*" || (R.event && who === R.event.asset));
  }
  function loggedIn() { return !fault("logged_out"); }
  function balance() { return fault("widget_deposit") ? 0 : state.balance; }

  function newCopy(name) {
    var odd = R.page === "event" && fault("widget_limit_sell");
    return {name: name, side: "UP", action: odd ? "SELL" : "BUY", mode: odd ? "limit" : "market", amount: "", els: null};
  }

  function market(asset) {
    for (var i = 0; i < state.markets.length; i++) if (state.markets[i].asset === asset) return state.markets[i];
    return null;
  }
  function ev() { return state.event || null; }   // the event page's window (its own market view)
  function isPast() { return !!R.event && now() >= R.event.end; }
  function isClosed(m) {
    return !m || isPast() || m.status !== "open" || R.overrides.unavailable.indexOf(m.asset) >= 0;
  }
  function shownPrice(p) {   // page_price_skew: 20 cents away from the book (down near the top of the range)
    return fault("page_price_skew") ? Math.round((p <= 0.79 ? p + 0.2 : p - 0.2) * 100) / 100 : p;
  }

  /* ---- amount validation: the same rules as the server ---- */
  function parseAmount(text) {
    var match = /^\$?\s*(\d+(?:\.\d*)?|\.\d+)$/.exec(String(text).trim().replace(/,/g, ""));
    return match ? parseFloat(match[1]) : 0;
  }
  function validate(m, copy) {
    var raw = copy.els.input ? copy.els.input.value.trim().replace(/,/g, "") : "";
    if (!raw) return {ok: false, msg: ""};
    if (raw.charAt(0) === "-" || raw.slice(0, 2) === "$-") return {ok: false, msg: "Amount must be positive"};
    var match = /^\$?\s*(\d+(?:\.\d*)?|\.\d+)$/.exec(raw);
    if (!match) return {ok: false, msg: "Enter a valid amount"};
    var amount = Math.round(parseFloat(match[1]) * 100) / 100;
    if (!(amount > 0)) return {ok: false, msg: "Enter an amount greater than $0"};
    var price = copy.side === "UP" ? m.up : m.down;
    if (amount < state.min_notional) return {ok: false, msg: "Minimum order is $" + state.min_notional.toFixed(0)};
    if (amount / price < state.min_shares) {
      return {ok: false, msg: "Minimum order is " + state.min_shares + " shares: at least " +
        usd(Math.ceil(state.min_shares * price * 100) / 100) + " at " + cents(price)};
    }
    if (amount > balance() + 1e-9) return {ok: false, msg: "Insufficient balance (" + usd(balance()) + " available)"};
    return {ok: true, amount: amount, price: price};
  }
  function feeShares(shares, p) { return shares * state.fee_rate * Math.pow(p * (1 - p), state.fee_exponent); }

  /* ---- the header: logged in (two links ending in /portfolio) or a Log In button ---- */
  function renderNav() {
    var nav = document.getElementById("site-nav");
    nav.textContent = "";
    nav.appendChild(h("a", {href: "/crypto/15M"}, "Crypto"));
    if (loggedIn()) {
      els.balance = h("strong", {id: "balance"}, usd(balance()));
      nav.appendChild(h("a", {href: "/portfolio", class: "nav-portfolio"}, "Portfolio"));
      nav.appendChild(h("a", {href: "/portfolio", class: "nav-cash"}, "Cash ", els.balance));
      nav.appendChild(h("span", {class: "account", title: "Connected wallet"}, "0x7a3…c91e"));
    } else {
      els.balance = null;
      nav.appendChild(h("button", {type: "button", class: "login-button", onclick: function () { openModal("auth"); }}, "Log In"));
      nav.appendChild(h("button", {type: "button", class: "signup-button", onclick: function () { openModal("auth"); }}, "Sign Up"));
    }
  }

  function openModal(kind) {
    var box = document.getElementById("modals");
    box.textContent = "";
    var close = h("button", {type: "button", class: "modal-close", onclick: function () { box.textContent = ""; }}, "Close");
    if (kind === "auth") {
      box.appendChild(h("div", {id: "authentication-modal", class: "modal", role: "dialog", "aria-modal": "true",
        "aria-label": "Log in"}, h("h2", {}, "Welcome to Replica Markets"), h("p", {}, "Log in or sign up to trade."), close));
    } else {
      box.appendChild(h("div", {class: "modal deposit-modal", role: "dialog", "aria-modal": "true", "aria-label": "Deposit"},
        h("h2", {}, "Deposit"), h("p", {}, "Your cash balance is " + usd(balance()) + ". Deposit to trade."), close));
    }
  }

  /* ---- the trade widget (one copy) ---- */
  function outcomeButton(copy, side, value, m, closed) {
    var c = C();
    var price = h("span", {class: "outcome-price"}, closed ? "—" : cents(shownPrice(side === "UP" ? m.up : m.down)));
    var b = h("button", {type: "button", role: "radio", value: value, class: c.btn + " outcome outcome-" + side.toLowerCase(),
      "data-color": side === "UP" ? "green" : "red", disabled: closed, onclick: function () { copy.side = side; refresh(); }},
      h("span", {class: "outcome-label"}, sideName(side)), price);
    return {button: b, price: price};
  }

  function actionRadio(copy, action) {
    return h("button", {type: "button", role: "radio", value: action, class: "side-tab",
      onclick: function () { copy.action = action; refresh(); }}, action === "BUY" ? "Buy" : "Sell");
  }

  function amountForm(copy, closed) {
    var c = C(), e = copy.els;
    e.input = h("input", {id: c.amountId, type: "text", inputmode: "decimal", autocomplete: "off", placeholder: "$0",
      class: "amount-input", "aria-label": "Amount", disabled: closed, oninput: function () { copy.amount = e.input.value; refresh(); }});
    e.input.value = copy.amount;
    var presets = h("div", {class: "presets"});
    [1, 5, 10, 100].forEach(function (n) {
      presets.appendChild(h("button", {type: "button", class: "preset", disabled: closed, onclick: function () {
        e.input.value = fmtAmount(parseAmount(e.input.value) + n); copy.amount = e.input.value; refresh();
      }}, "+$" + n));
    });
    presets.appendChild(h("button", {type: "button", class: "preset preset-max", disabled: closed, onclick: function () {
      e.input.value = fmtAmount(Math.floor(balance() * 100) / 100); copy.amount = e.input.value; refresh();
    }}, "Max"));
    return h("div", {class: "market-form"}, h("label", {class: "amount-box"}, h("span", {class: "label"}, "Amount"), e.input),
      presets);
  }

  function limitForm(copy) {
    copy.els.input = null;
    return h("div", {class: "limit-form"},
      h("label", {class: "amount-box"}, h("span", {class: "label"}, "Limit Price"),
        h("input", {type: "text", class: "limit-price-input", placeholder: "0¢", inputmode: "decimal"})),
      h("label", {class: "amount-box"}, h("span", {class: "label"}, "Shares"),
        h("input", {type: "text", class: "limit-shares-input", placeholder: "0", inputmode: "decimal"})));
  }

  function buildWidget(copy) {
    var c = C(), m = ev(), closed = isClosed(m);
    var e = copy.els = {};
    e.buy = actionRadio(copy, "BUY");
    e.sell = actionRadio(copy, "SELL");
    e.mode = h("button", {type: "button", class: "order-type", "aria-label": "side selection", "aria-haspopup": "menu",
      onclick: function () { copy.mode = copy.mode === "market" ? "limit" : "market"; refresh(); }},
      copy.mode === "market" ? "Market" : "Limit");
    var up = outcomeButton(copy, "UP", "0", m, closed), down = outcomeButton(copy, "DOWN", "1", m, closed);
    e.up = up.button; e.down = down.button; e.upPrice = up.price; e.downPrice = down.price;
    e.error = h("p", {class: "amount-error", role: "alert", hidden: true});
    e.summary = h("p", {class: "order-summary"});
    e.submit = h("button", {type: "button", class: c.btn + " submit", "data-color": "blue",
      onclick: function () { submit(copy); }}, "Trade");
    var wrapper = h("div", {class: "submit-wrapper"});
    wrapper.setAttribute(c.wrapperAttr, "");
    wrapper.appendChild(e.submit);
    var top = h("div", {class: "widget-top"}, h("div", {class: "side-tabs", role: "radiogroup", "aria-label": "Buy or sell"},
      e.buy, e.sell), e.mode);
    var outcomes = h("div", {id: c.outcomesId, class: "outcome-buttons", role: "radiogroup", "aria-label": "Outcome"},
      e.up, e.down);
    var form = copy.mode === "market" ? amountForm(copy, closed) : limitForm(copy);
    var parts = isVariant() ? [outcomes, top, form, e.error, e.summary, wrapper] : [top, outcomes, form, e.error, e.summary, wrapper];
    e.root = h("div", {id: c.widgetId, class: "trade-widget"});
    parts.forEach(function (p) { e.root.appendChild(p); });
    return e.root;
  }

  function radio(el, on) {
    el.setAttribute("aria-checked", on ? "true" : "false");
    el.setAttribute("data-state", on ? "checked" : "unchecked");
    el.classList.toggle("selected", on);
  }

  function submitState(copy, m, v) {
    if (!loggedIn()) return {text: "Log in", enabled: true, kind: "login"};
    if (isClosed(m)) return {text: "Unavailable", enabled: false};
    if (fault("widget_deposit")) return {text: "Deposit", enabled: true, kind: "deposit"};
    var label = sideName(copy.side);
    if (copy.action === "SELL") return {text: "Sell " + label, enabled: false, note: "You have no " + label + " shares to sell."};
    if (copy.mode === "limit") return {text: "Buy " + label, enabled: false, note: "Limit orders are not part of the replica."};
    if (!copy.els.input || !copy.els.input.value.trim()) return {text: "Trade", enabled: false};
    return {text: "Buy " + label, enabled: v.ok, kind: "buy"};
  }

  function refreshWidget(copy) {
    var e = copy.els, m = ev();
    if (!e || !m) return;
    var closed = isClosed(m);
    radio(e.up, copy.side === "UP");
    radio(e.down, copy.side === "DOWN");
    radio(e.buy, copy.action === "BUY");
    radio(e.sell, copy.action === "SELL");
    if (!closed) {
      e.upPrice.textContent = cents(shownPrice(m.up));
      e.downPrice.textContent = cents(shownPrice(m.down));
    }
    var v = closed || !e.input ? {ok: false, msg: ""} : validate(m, copy);
    var s = submitState(copy, m, v);
    if (e.submit.textContent !== s.text) e.submit.textContent = s.text;
    e.submit.disabled = !s.enabled;   // a click while an order is on its way is ignored, as before
    e.submit.setAttribute("aria-busy", pending ? "true" : "false");
    e.error.hidden = !v.msg;
    e.error.textContent = v.msg || "";
    if (e.input) e.input.setAttribute("aria-invalid", v.msg ? "true" : "false");
    if (closed) e.summary.textContent = "This market is not taking orders.";
    else if (s.note) e.summary.textContent = s.note;
    else if (v.ok) {
      var gross = v.amount / v.price, fee = feeShares(gross, v.price);
      e.summary.textContent = "To win " + usd(gross - fee) + " (fee " + fee.toFixed(2) + " shares)";
    } else e.summary.textContent = "";
  }

  function fmtAmount(x) { x = Math.round(x * 100) / 100; return x % 1 === 0 ? String(x) : x.toFixed(2); }

  /* ---- tables: Positions and History (the venue's own record of the user's orders) ---- */
  function orderStatus(x) { return x.status === "filled" ? "Filled" : (x.result === "won" ? "Won" : "Lost"); }

  function historyTable(orders) {
    var head = ["Activity", "Market", "Outcome", "Price", "Shares", "Value", "Fee", "Status", "Payout", "Time", "Transaction"];
    var tbody = h("tbody", {});
    orders.forEach(function (x) {
      tbody.appendChild(h("tr", {class: "history-row"},
        h("td", {}, "Buy"), h("td", {}, h("a", {href: eventHref(x.slug)}, x.title || x.slug)),
        h("td", {class: "side-" + x.side.toLowerCase()}, sideName(x.side)), h("td", {}, cents(x.price)),
        h("td", {}, x.shares.toFixed(4)), h("td", {}, usd(x.amount)), h("td", {}, usd4(x.fee)),
        h("td", {class: x.result ? "result-" + x.result : ""}, orderStatus(x)),
        h("td", {}, x.payout === null ? "—" : usd4(x.payout)),
        h("td", {}, new Date(x.time * 1000).toLocaleTimeString()),
        h("td", {}, h("a", {href: "/tx/" + x.id, class: "tx-link", title: x.id}, x.id))));
    });
    return table(head, tbody, orders.length ? null : "No trades yet.");
  }

  function positionsTable(orders) {
    var head = ["Market", "Outcome", "Shares", "Avg", "Cost", "Status", ""];
    var groups = {}, keys = [];
    orders.forEach(function (x) {
      var k = x.slug + " " + x.side;
      if (!groups[k]) { groups[k] = {slug: x.slug, title: x.title, side: x.side, shares: 0, cost: 0, result: x.result}; keys.push(k); }
      groups[k].shares += x.shares; groups[k].cost += x.amount;
    });
    var tbody = h("tbody", {});
    keys.forEach(function (k) {
      var p = groups[k];
      tbody.appendChild(h("tr", {class: "position-row"},
        h("td", {}, h("a", {href: eventHref(p.slug)}, p.title || p.slug)), h("td", {class: "side-" + p.side.toLowerCase()}, sideName(p.side)),
        h("td", {}, p.shares.toFixed(4)), h("td", {}, cents(p.cost / (p.shares || 1))), h("td", {}, usd(p.cost)),
        h("td", {}, p.result ? (p.result === "won" ? "Won" : "Lost") : "Open"),
        h("td", {}, h("button", {type: "button", class: "sell-position", disabled: true,
          title: "Selling is not part of the replica"}, "Sell"))));
    });
    return table(head, tbody, keys.length ? null : "No positions.");
  }

  function table(head, tbody, empty) {
    var tr = h("tr", {});
    head.forEach(function (t) { tr.appendChild(h("th", {}, t)); });
    var t = h("table", {class: "record-table"}, h("thead", {}, tr), tbody);
    return empty ? h("div", {}, h("p", {class: "muted"}, empty), t) : t;
  }

  function panel(title, content) { return h("section", {class: "panel"}, h("h3", {}, title), content); }

  function myOrders() {
    if (R.page !== "event") return state.orders;
    return state.orders.filter(function (x) { return x.slug === R.event.slug; });
  }

  function refreshTables() {
    if (!els.tables) return;
    var key = JSON.stringify(myOrders().map(function (x) { return [x.id, x.status, x.result]; }));
    if (key === tablesKey) return;
    tablesKey = key;
    els.tables.textContent = "";
    els.tables.appendChild(panel("Positions", positionsTable(myOrders())));
    els.tables.appendChild(panel("History", historyTable(myOrders())));
  }

  /* ---- pages ---- */
  function renderEvent(app) {
    var m = ev();
    copies.forEach(function (copy) { copy.els = null; });
    els.ptbSlot = h("div", {class: "ptb-slot"});
    els.current = h("span", {class: "current-price"});
    els.countdown = h("span", {class: "countdown", "aria-label": "time left"});
    els.goLive = h("div", {class: "go-live-slot"});
    els.tables = h("div", {class: "records"});
    tablesKey = "";
    var head = h("div", {class: "event-header"}, h("span", {class: "asset-badge asset-" + R.event.asset.toLowerCase()}, R.event.asset),
      h("h1", {class: "event-title"}, m ? m.title : R.event.slug), els.goLive);
    var stats = h("div", {class: "market-stats"}, els.ptbSlot,
      h("div", {class: "stat"}, h("span", {class: "label"}, "Current price"), els.current),
      h("div", {class: "stat"}, h("span", {class: "label"}, "Time"), els.countdown));
    var main = h("div", {class: "event-main"}, head, stats, els.tables);
    var side = h("aside", {class: "event-side"}, buildWidget(copies[0]));
    var sheet = h("div", {class: "mobile-trade-sheet", hidden: true}, buildWidget(copies[1]));
    var parts = isVariant() ? [side, main] : [main, side];
    if (fault("widget_hidden_first")) parts.unshift(sheet); else parts.push(sheet);
    app.className = "event-layout" + (isVariant() ? " layout-variant" : "");
    parts.forEach(function (p) { app.appendChild(p); });
  }

  function hubTile(m, start, live) {
    var slug = live ? m.slug : m.slug.replace(/\d+$/, String(start));
    return h("a", {class: "market-tile" + (live ? " is-live" : ""), href: eventHref(slug)},
      h("span", {class: "tile-when"}, live ? "Live" : "Next"),
      h("span", {class: "tile-title"}, m.name + " Up or Down"),
      h("span", {class: "tile-prices"}, live ? "Up " + cents(m.up) + " · Down " + cents(m.down) : "Up 50¢ · Down 51¢"),
      h("span", {class: "tile-time", "data-end": live ? m.window_end : start}, ""));
  }

  function renderHub(app) {
    app.className = "hub-layout";
    app.appendChild(h("div", {class: "page-heading"}, h("h1", {}, "Crypto · " + windowLabel() + " Up or Down"),
      h("p", {class: "subtitle"}, "Will the price be at or above the price to beat when the window ends? A new market opens every " +
        windowLabel() + ".")));
    var grid = h("section", {class: "hub-grid", "aria-label": "Markets"});
    state.markets.forEach(function (m) {
      grid.appendChild(h("div", {class: "hub-asset"}, h("h2", {}, m.name),
        hubTile(m, m.window_start, true), hubTile(m, m.window_end, false)));
    });
    app.appendChild(grid);
  }

  function renderPortfolio(app) {
    app.className = "portfolio-layout";
    els.tables = h("div", {class: "records"});
    tablesKey = "";
    app.appendChild(h("div", {class: "page-heading"}, h("h1", {}, "Portfolio"),
      h("p", {class: "subtitle"}, "Cash " + usd(balance()))));
    app.appendChild(els.tables);
  }

  function computeStructureKey() {
    var m = ev();
    var parts = [isVariant(), R.page, loggedIn(), fault("widget_hidden_first"), isClosed(m), isPast()];
    copies.forEach(function (copy) { parts.push(copy.mode); });
    if (R.page === "hub") state.markets.forEach(function (x) { parts.push(x.slug); });
    return parts.join("|");
  }

  function renderAll() {
    var app = document.getElementById("app");
    app.textContent = "";
    els = {};
    renderNav();
    if (R.page === "event") renderEvent(app);
    else if (R.page === "portfolio") renderPortfolio(app);
    else renderHub(app);
  }

  /* ---- live updates ---- */
  function refreshEvent() {
    var m = ev(), c = C();
    if (!m) return;
    var t = now();
    els.countdown.textContent = t < R.event.start ? "Starts in " + fmtLeft(R.event.start - t)
      : (t < R.event.end ? "Ends in " + fmtLeft(R.event.end - t) : "Ended");
    var live = market(R.event.asset);
    els.current.textContent = priceUsd(live ? live.price : m.price);
    var showPtb = m.price_to_beat !== null && !fault("price_to_beat_late");
    if (showPtb && !els.ptbSlot.querySelector("." + c.ptbValue)) {
      els.ptbSlot.textContent = "";
      els.ptbSlot.appendChild(h("div", {class: "price-to-beat stat"}, h("span", {class: "label"}, "Price to beat"),
        h("span", {class: c.ptbValue}, priceUsd(m.price_to_beat))));
    } else if (!showPtb && els.ptbSlot.firstChild) {
      els.ptbSlot.textContent = "";
    }
    if (isPast() && !els.goLive.firstChild) {
      els.goLive.appendChild(h("button", {type: "button", class: "go-live", "aria-label": "Go to live market",
        onclick: function () { location.href = eventHref(liveSlug()); }}, "Go to live market"));
    }
    copies.forEach(refreshWidget);
  }

  function refreshHub() {
    var tiles = document.querySelectorAll(".tile-time");
    for (var i = 0; i < tiles.length; i++) {
      var end = Number(tiles[i].getAttribute("data-end"));
      var live = tiles[i].parentNode.classList.contains("is-live");
      tiles[i].textContent = (live ? "Ends in " : "Starts in ") + fmtLeft(end - now());
    }
  }

  function refresh() {
    var key = computeStructureKey();
    if (key !== structureKey) { structureKey = key; renderAll(); }
    if (els.balance) els.balance.textContent = usd(balance());
    if (R.page === "event") refreshEvent();
    else if (R.page === "hub") refreshHub();
    refreshTables();
  }

  /* ---- the order: Buy -> wallet popup -> the outcome ---- */
  function toast(kind, text, orderId) {
    var el = h("div", {class: "toast toast-" + kind, "data-testid": C().toast, "data-kind": kind,
      "data-order-id": orderId || null, role: kind === "error" ? "alert" : "status"},
      h("span", {class: "toast-text"}, text),
      h("button", {type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: function () { el.remove(); }}, "×"));
    document.getElementById("toasts").prepend(el);
    setTimeout(function () { el.remove(); }, 30000);
  }

  function postJSON(path, body) {
    return fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { j._status = r.status; return j; }); });
  }

  function submit(copy) {
    var m = ev();
    var s = submitState(copy, m, copy.els.input && m ? validate(m, copy) : {ok: false});
    if (s.kind === "login") { openModal("auth"); return; }
    if (s.kind === "deposit") { openModal("deposit"); return; }
    if (s.kind !== "buy" || !s.enabled) return;
    if (pending === "starting") return;                          // a second click while the first is on its way
    if (pending && walletWin && !walletWin.closed) { walletWin.focus(); return; }   // the wallet is open
    pending = "starting";
    refresh();
    postJSON("/api/intents", {asset: R.event.asset, side: copy.side, amount: copy.els.input.value, slug: R.event.slug})
      .then(function (ans) {
        if (!ans.ok) { pending = null; toast("error", ans.error || "Order failed"); refresh(); return; }
        pending = ans.request_id;
        if (ans.popup.open) {
          var open = function () {
            walletWin = window.open(ans.popup.url, "replica-wallet-" + ans.request_id, "popup=yes,width=400,height=660");
          };
          if (ans.popup.delay_ms > 0) setTimeout(open, ans.popup.delay_ms); else open();
        }
        if (!watching[ans.request_id]) { watching[ans.request_id] = true; watch(ans.request_id); }
      })
      .catch(function (err) { pending = null; toast("error", "Order failed: " + err); refresh(); });
  }

  function watch(id) {
    fetch("/api/requests/" + encodeURIComponent(id)).then(function (r) {
      if (r.status === 404) return {status: "unknown"};
      return r.json();
    }).then(function (s) {
      if (s.status === "pending") { setTimeout(function () { watch(id); }, 300); return; }
      if (pending === id) pending = null;
      delete watching[id];
      return pollOnce().then(function () {
        if (s.status === "confirmed") {
          var o = s.order || {};
          toast("success", "Order placed · " + s.order_id + " · Buy " + (o.side === "DOWN" ? "Down" : "Up") + " " +
            usd(o.amount || 0) + " at " + cents(o.price || 0) + " · " + (o.shares || 0).toFixed(2) +
            " shares, fee " + (o.fee_shares || 0).toFixed(2) + " shares", s.order_id);
        } else if (s.status === "rejected") {
          toast("error", "Order cancelled");
        } else if (s.status === "unknown") {
          toast("error", "Order status unknown: check your History");
        } else {
          toast("error", s.error || "Order failed");
        }
      });
    }).catch(function () { setTimeout(function () { watch(id); }, 1000); });
  }

  /* ---- polling ---- */
  function pollOnce() {
    var url = "/api/state" + (R.event ? "?slug=" + encodeURIComponent(R.event.slug) : "");
    return fetch(url, {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (s) {
      state = s;
      offset = s.now - Date.now() / 1000;
      document.getElementById("connection-banner").hidden = true;
      refresh();
    });
  }

  /* A page in a background tab refreshes less often (600 ms), and at once when its window begins. */
  function hidden() { return document.visibilityState === "hidden"; }

  function loop() {
    if (polling) return;
    polling = true;
    pollOnce().then(function () { polling = false; setTimeout(loop, hidden() ? 600 : 300); }, function () {
      polling = false;
      document.getElementById("connection-banner").hidden = false;
      setTimeout(loop, 1000);
    });
  }

  function tick() {
    refresh();
    var rolled = state.markets.some(function (m) { return now() >= m.window_end; });
    var started = R.event && state.now < R.event.start && now() >= R.event.start;
    if (rolled || started) loop();   // roll-over, or this page's window just began: fetch at once
    var delay = hidden() ? 600 : 250;
    if (R.event && now() < R.event.start) delay = Math.min(delay, (R.event.start - now()) * 1000 + 20);
    setTimeout(tick, delay);
  }

  document.addEventListener("visibilitychange", function () { if (!hidden()) { refresh(); loop(); } });
  refresh();
  setTimeout(tick, 250);
  setTimeout(loop, 300);
})();
