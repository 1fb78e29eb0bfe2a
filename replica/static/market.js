/* The replica's market page: renders the cards from /api/state and keeps them live. */
(function () {
  "use strict";
  var R = window.REPLICA;
  var state = R.state;
  var offset = state.now - Date.now() / 1000;
  var ui = {};            // per asset: side, amount text, pending request, elements
  var structureKey = "";
  var ordersKey = "";
  var polling = false;
  var watching = {};      // wallet request ids whose outcome this page is waiting for

  var NORMAL = {
    card: "market-card", cardTag: "article", assetAttr: "data-asset", slugAttr: "data-slug",
    title: "market-title", titleTag: "h2", btn: "trading-button", tabBuy: "tab-buy", placeholder: "$0",
    panelTag: "section", panelId: "your-orders", row: "order-row", rowSlug: "data-slug",
    countdown: "countdown", ptb: "price-to-beat", toast: "toast"
  };
  var VARIANT = {
    card: "mkt-tile", cardTag: "div", assetAttr: "data-coin", slugAttr: "data-market",
    title: "tile-heading", titleTag: "h3", btn: "trade-btn", tabBuy: "tab-purchase", placeholder: "Amount (USD)",
    panelTag: "aside", panelId: "order-history", row: "history-row", rowSlug: "data-market",
    countdown: "time-remaining", ptb: "target-price", toast: "notice"
  };

  function now() { return Date.now() / 1000 + offset; }
  function isVariant() { return !!(R.overrides.variant || state.variant); }
  function C() { return isVariant() ? VARIANT : NORMAL; }
  function isUnavailable(m) { return m.status !== "open" || R.overrides.unavailable.indexOf(m.asset) >= 0; }
  function cents(p) { return Math.round(p * 100) + "¢"; }
  function usd(x) { return "$" + Number(x).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}); }
  function priceUsd(x) {
    return "$" + Number(x).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: x < 100 ? 4 : 2});
  }

  var h = window.replicaDom.h;

  function market(asset) {
    for (var i = 0; i < state.markets.length; i++) if (state.markets[i].asset === asset) return state.markets[i];
    return null;
  }

  /* ---- amount validation: the same rules as the server ---- */
  function validate(m, u) {
    var raw = u.els.input.value.trim().replace(/,/g, "");
    if (!raw) return {ok: false, msg: ""};
    if (raw.charAt(0) === "-" || raw.slice(0, 2) === "$-") return {ok: false, msg: "Amount must be positive"};
    var match = /^\$?\s*(\d+(?:\.\d*)?|\.\d+)$/.exec(raw);
    if (!match) return {ok: false, msg: "Enter a valid amount"};
    var amount = Math.round(parseFloat(match[1]) * 100) / 100;
    if (!(amount > 0)) return {ok: false, msg: "Enter an amount greater than $0"};
    var price = u.side === "UP" ? m.up : m.down;
    if (amount < state.min_notional) return {ok: false, msg: "Minimum order is $" + state.min_notional.toFixed(0)};
    if (amount / price < state.min_shares) {
      return {ok: false, msg: "Minimum order is " + state.min_shares + " shares: at least " +
        usd(Math.ceil(state.min_shares * price * 100) / 100) + " at " + cents(price)};
    }
    if (amount > state.balance + 1e-9) return {ok: false, msg: "Insufficient balance (" + usd(state.balance) + " available)"};
    return {ok: true, amount: amount, price: price};
  }

  function feeShares(shares, p) { return shares * state.fee_rate * Math.pow(p * (1 - p), state.fee_exponent); }

  /* ---- building the DOM ---- */
  function buildCard(m) {
    var c = C();
    var u = ui[m.asset] || (ui[m.asset] = {side: "UP", amount: "", pending: null, slug: null});
    if (u.slug !== m.slug) { u.amount = ""; u.slug = m.slug; }
    var closed = isUnavailable(m);
    var els = {};
    var attrs = {class: c.card + (closed ? " is-closed" : ""), "data-window-start": m.window_start,
      "data-window-end": m.window_end, "data-status": closed ? "closed" : "open"};
    attrs[c.assetAttr] = m.asset;
    attrs[c.slugAttr] = m.slug;
    els.upPrice = h("span", {class: "outcome-price"}, closed ? "—" : cents(m.up));
    els.downPrice = h("span", {class: "outcome-price"}, closed ? "—" : cents(m.down));
    els.up = h("button", {type: "button", class: "outcome " + c.btn + " outcome-up", disabled: closed,
      onclick: function () { choose(m.asset, "UP"); }}, h("span", {}, "Up"), els.upPrice);
    els.down = h("button", {type: "button", class: "outcome " + c.btn + " outcome-down", disabled: closed,
      onclick: function () { choose(m.asset, "DOWN"); }}, h("span", {}, "Down"), els.downPrice);
    els.input = h("input", {type: "text", inputmode: "decimal", autocomplete: "off", placeholder: c.placeholder,
      class: "amount-input", "aria-label": "Amount in USD", disabled: closed, oninput: function () { refresh(); }});
    els.input.value = u.amount;
    var presets = h("div", {class: "presets"});
    [1, 5, 10, 100].forEach(function (n) {
      presets.appendChild(h("button", {type: "button", class: "preset", disabled: closed,
        onclick: function () { addAmount(m.asset, n); }}, "+$" + n));
    });
    presets.appendChild(h("button", {type: "button", class: "preset preset-max", disabled: closed,
      onclick: function () { setMax(m.asset); }}, "Max"));
    els.error = h("p", {class: "amount-error", role: "alert", hidden: true});
    els.summary = h("p", {class: "order-summary"});
    els.submit = h("button", {type: "button", class: "submit " + c.btn, disabled: true,
      onclick: function () { buy(m.asset); }}, closed ? "Unavailable" : (u.side === "UP" ? "Buy Up" : "Buy Down"));
    els.countdown = h("span", {class: c.countdown, "aria-label": "time left"});
    els.ptbSlot = h("div", {class: "ptb-slot"});
    els.current = h("span", {class: "current-price"});
    var title = h(c.titleTag, {class: c.title}, m.title);
    var stats = h("div", {class: "market-stats"}, els.ptbSlot,
      h("div", {class: "stat"}, h("span", {class: "label"}, "Current price"), els.current),
      h("div", {class: "stat"}, h("span", {class: "label"}, "Ends in"), els.countdown));
    var tabs = h("div", {class: "tabs", role: "tablist"},
      h("button", {type: "button", class: c.tabBuy + " active", role: "tab", "aria-selected": "true"}, "Buy"),
      h("button", {type: "button", class: "tab-sell", role: "tab", disabled: true, title: "Selling is not part of the replica"}, "Sell"));
    var amountBox = h("label", {class: "amount-box"}, h("span", {class: "label"}, "Amount"), els.input);
    var panel = h("div", {class: "trade-panel"}, tabs, h("div", {class: "outcomes"}, els.up, els.down),
      amountBox, presets, els.error, els.summary, els.submit);
    var head = h("header", {class: "card-head"}, h("span", {class: "asset-badge asset-" + m.asset.toLowerCase()}, m.asset), title);
    var card;
    if (isVariant()) card = h(c.cardTag, attrs, panel, head, stats);   // moved elements
    else card = h(c.cardTag, attrs, head, stats, panel);
    els.root = card;
    u.els = els;
    return card;
  }

  function buildOrdersPanel() {
    var c = C();
    var tbody = h("tbody", {});
    var table = h("table", {class: "orders-table"},
      h("thead", {}, h("tr", {}, h("th", {}, "Market"), h("th", {}, "Side"), h("th", {}, "Amount"), h("th", {}, "Price"),
        h("th", {}, "Shares"), h("th", {}, "Fee"), h("th", {}, "Status"), h("th", {}, "Result"), h("th", {}, "Payout"),
        h("th", {}, "Order"))),
      tbody);
    var empty = h("p", {class: "orders-empty"}, "No orders yet. Pick Up or Down, enter an amount and press Buy.");
    var positions = h("div", {class: "positions"});
    var panel = h(c.panelTag, {id: c.panelId, class: "orders-panel"},
      h("h2", {}, isVariant() ? "Order history" : "Your orders"), empty, table,
      h("h3", {}, "Positions by window"), positions);
    ui._orders = {tbody: tbody, empty: empty, positions: positions, table: table};
    ordersKey = "";
    return panel;
  }

  function windowLabel() {
    var w = state.window_seconds;
    return w % 60 === 0 ? (w / 60) + " min" : w + " s";
  }

  function renderAll() {
    var app = document.getElementById("app");
    app.textContent = "";
    app.className = isVariant() ? "layout-variant" : "layout-normal";
    var grid = h("section", {class: isVariant() ? "tiles" : "markets", "aria-label": "Markets"});
    if (R.page === "market") state.markets.forEach(function (m) { grid.appendChild(buildCard(m)); });
    var heading = h("div", {class: "page-heading"},
      h("h1", {}, R.page === "market" ? "Crypto · " + windowLabel() + " Up or Down" : "Portfolio"),
      h("p", {class: "subtitle"}, R.page === "market"
        ? "Will the price be at or above the price to beat when the window ends? A new market opens every " + windowLabel() + "."
        : "Your orders and their results."));
    var panel = buildOrdersPanel();
    if (isVariant()) { app.appendChild(panel); app.appendChild(heading); app.appendChild(grid); }
    else { app.appendChild(heading); if (R.page === "market") app.appendChild(grid); app.appendChild(panel); }
  }

  function computeStructureKey() {
    return [isVariant(), R.page].concat(state.markets.map(function (m) {
      return m.asset + ":" + m.slug + ":" + isUnavailable(m);
    })).join("|");
  }

  /* ---- live updates ---- */
  function fmtLeft(s) {
    s = Math.max(0, Math.ceil(s));
    var m = Math.floor(s / 60), r = s % 60;
    return (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
  }

  function refreshCard(m) {
    var u = ui[m.asset];
    if (!u || !u.els) return;
    var els = u.els, c = C();
    var closed = isUnavailable(m);
    var left = m.window_end - now();
    els.countdown.textContent = left > 0 ? fmtLeft(left) : "Ended";
    els.current.textContent = priceUsd(m.price);
    if (!closed) {
      els.upPrice.textContent = cents(m.up);
      els.downPrice.textContent = cents(m.down);
    }
    els.up.classList.toggle("selected", u.side === "UP");
    els.down.classList.toggle("selected", u.side === "DOWN");
    if (m.price_to_beat !== null && !els.ptbSlot.querySelector("." + c.ptb)) {
      els.ptbSlot.textContent = "";
      els.ptbSlot.appendChild(h("div", {class: c.ptb + " stat"}, h("span", {class: "label"}, "Price to beat"),
        h("span", {class: "value"}, priceUsd(m.price_to_beat))));
    } else if (m.price_to_beat === null && !els.ptbSlot.firstChild) {
      els.ptbSlot.appendChild(h("div", {class: "ptb-pending stat"}, h("span", {class: "label"}, "Price to beat"),
        h("span", {class: "value muted"}, "in " + Math.max(0, Math.ceil(m.price_to_beat_at - now())) + " s")));
    } else if (m.price_to_beat === null) {
      var v = els.ptbSlot.querySelector(".value");
      if (v) v.textContent = "in " + Math.max(0, Math.ceil(m.price_to_beat_at - now())) + " s";
    }
    u.amount = els.input.value;
    if (closed) {
      els.submit.textContent = "Unavailable";
      els.submit.disabled = true;
      els.summary.textContent = "This market is not taking orders.";
      return;
    }
    var label = u.side === "UP" ? "Buy Up" : "Buy Down";
    if (els.submit.textContent !== label) els.submit.textContent = label;
    var v2 = validate(m, u);
    els.error.hidden = !v2.msg;
    els.error.textContent = v2.msg || "";
    els.input.setAttribute("aria-invalid", v2.msg ? "true" : "false");
    els.submit.disabled = !v2.ok || left <= 0;
    if (v2.ok) {
      var gross = v2.amount / v2.price, fee = feeShares(gross, v2.price);
      els.summary.textContent = "≈ " + (gross - fee).toFixed(2) + " shares after a fee of " + fee.toFixed(2) +
        " shares · pays " + usd(gross - fee) + " if " + (u.side === "UP" ? "Up" : "Down") + " wins";
    } else {
      els.summary.textContent = "";
    }
    els.submit.setAttribute("aria-busy", u.pending ? "true" : "false");
  }

  function refreshOrders() {
    var o = ui._orders;
    if (!o) return;
    var key = JSON.stringify(state.orders.map(function (x) { return [x.id, x.status, x.result]; }));
    if (key === ordersKey) return;
    ordersKey = key;
    var c = C();
    o.tbody.textContent = "";
    o.empty.hidden = state.orders.length > 0;
    o.table.hidden = state.orders.length === 0;
    var byWindow = {};
    state.orders.forEach(function (x) {
      var attrs = {class: c.row + " status-" + x.status, "data-order-id": x.id, "data-side": x.side,
        "data-amount": x.amount.toFixed(2), "data-price": x.price.toFixed(2), "data-shares": x.shares.toFixed(4),
        "data-fee": x.fee.toFixed(4), "data-status": x.status, "data-result": x.result || "",
        "data-payout": x.payout === null ? "" : x.payout.toFixed(4), "data-asset": x.asset,
        "data-window-start": x.window_start};
      attrs[c.rowSlug] = x.slug;
      o.tbody.appendChild(h("tr", attrs,
        h("td", {class: "order-market"}, x.title || (x.asset + " " + new Date(x.window_start * 1000).toLocaleTimeString())),
        h("td", {class: "side-" + x.side.toLowerCase()}, x.side === "UP" ? "Up" : "Down"),
        h("td", {}, usd(x.amount)), h("td", {}, cents(x.price)), h("td", {}, x.shares.toFixed(2)),
        h("td", {}, x.fee_shares.toFixed(2) + " sh (" + usd(x.fee) + ")"),
        h("td", {}, x.status === "filled" ? "Filled" : "Settled"),
        h("td", {class: x.result ? "result-" + x.result : ""}, x.result ? (x.result === "won" ? "Won" : "Lost") : "—"),
        h("td", {}, x.payout === null ? "—" : usd(x.payout)),
        h("td", {class: "order-id"}, x.id)));
      var k = x.slug + " " + x.side;
      var p = byWindow[k] || (byWindow[k] = {slug: x.slug, side: x.side, shares: 0, cost: 0, status: x.status, result: x.result});
      p.shares += x.shares; p.cost += x.amount;
    });
    o.positions.textContent = "";
    Object.keys(byWindow).forEach(function (k) {
      var p = byWindow[k];
      o.positions.appendChild(h("div", {class: "position", "data-slug": p.slug, "data-side": p.side},
        p.slug + " · " + (p.side === "UP" ? "Up" : "Down") + " · " + p.shares.toFixed(2) + " shares for " + usd(p.cost) +
        (p.result ? " · " + (p.result === "won" ? "won" : "lost") : " · open")));
    });
    if (!Object.keys(byWindow).length) o.positions.appendChild(h("p", {class: "muted"}, "No positions."));
  }

  function refresh() {
    var key = computeStructureKey();
    if (key !== structureKey) { structureKey = key; renderAll(); }
    document.getElementById("balance").textContent = usd(state.balance);
    state.markets.forEach(refreshCard);
    refreshOrders();
  }

  /* ---- actions ---- */
  function choose(asset, side) { ui[asset].side = side; refresh(); }

  function currentAmount(u) {
    var match = /^\$?\s*(\d+(?:\.\d*)?|\.\d+)$/.exec(u.els.input.value.trim().replace(/,/g, ""));
    return match ? parseFloat(match[1]) : 0;
  }

  function fmtAmount(x) { x = Math.round(x * 100) / 100; return x % 1 === 0 ? String(x) : x.toFixed(2); }

  function addAmount(asset, n) {
    var u = ui[asset];
    u.els.input.value = fmtAmount(currentAmount(u) + n);
    refresh();
  }

  function setMax(asset) {
    var u = ui[asset];
    u.els.input.value = fmtAmount(Math.floor(state.balance * 100) / 100);
    refresh();
  }

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

  function buy(asset) {
    var u = ui[asset], m = market(asset);
    if (!m || isUnavailable(m)) return;
    if (u.pending === "starting") return;          // a second click while the first is on its way
    if (u.pending && u.walletWin && !u.walletWin.closed) { u.walletWin.focus(); return; }   // wallet open
    var v = validate(m, u);
    if (!v.ok) { refresh(); return; }
    u.pending = "starting";
    refresh();
    postJSON("/api/intents", {asset: asset, side: u.side, amount: u.els.input.value, slug: m.slug})
      .then(function (ans) {
        if (!ans.ok) { u.pending = null; toast("error", ans.error || "Order failed"); refresh(); return; }
        u.pending = ans.request_id;
        if (ans.popup.open) {
          var open = function () {
            u.walletWin = window.open(ans.popup.url, "replica-wallet-" + ans.request_id, "popup=yes,width=400,height=660");
          };
          if (ans.popup.delay_ms > 0) setTimeout(open, ans.popup.delay_ms); else open();
        }
        if (!watching[ans.request_id]) { watching[ans.request_id] = true; watch(asset, ans.request_id); }
      })
      .catch(function (err) { u.pending = null; toast("error", "Order failed: " + err); refresh(); });
  }

  function watch(asset, id) {
    var u = ui[asset];
    fetch("/api/requests/" + encodeURIComponent(id)).then(function (r) {
      if (r.status === 404) return {status: "unknown"};
      return r.json();
    }).then(function (s) {
      if (s.status === "pending") { setTimeout(function () { watch(asset, id); }, 300); return; }
      if (u.pending === id) u.pending = null;
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
          toast("error", "Order status unknown: check Your orders");
        } else {
          toast("error", s.error || "Order failed");
        }
      });
    }).catch(function () { setTimeout(function () { watch(asset, id); }, 1000); });
  }

  /* ---- polling ---- */
  function pollOnce() {
    return fetch("/api/state", {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (s) {
      state = s;
      offset = s.now - Date.now() / 1000;
      document.getElementById("connection-banner").hidden = true;
      refresh();
    });
  }

  function loop() {
    if (polling) return;
    polling = true;
    pollOnce().then(function () { polling = false; setTimeout(loop, 300); }, function () {
      polling = false;
      document.getElementById("connection-banner").hidden = false;
      setTimeout(loop, 1000);
    });
  }

  refresh();
  setInterval(function () {
    state.markets.forEach(function (m) {
      refreshCard(m);
      if (now() >= m.window_end) loop();   // roll-over: fetch the new window at once
    });
  }, 250);
  setTimeout(loop, 300);
})();
