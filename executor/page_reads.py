"""Reads of an event page in one `evaluate` round trip each: the visible widget's state, and the
venue's own record of the user's orders (the History panel's rows).

`read_snapshot`: whether the page's data script is there, how many copies of the trade widget are
visible, and inside the first visible one which parts exist, each outcome button's text and
checked state, whether Buy is checked, the amount typed and the trade button's text (None when
the page cannot be read: the widget's selectors must be plain CSS, as they are for the real site).

`read_rows`: every row of the panel under the heading `records.history_title` (a
`records.heading` element inside a `records.container`): each row's cells by their column header,
and each cell's link. Rows become executor.page_data.OrderRow by the profile's `records.columns`
(outcome, price, shares, value, status, payout, the market's /event/<slug> link and the
transaction link whose last path segment is the order's id).
"""

from __future__ import annotations

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from executor.page_data import OrderRow, record_fields
from executor.profiles import SiteProfile, fill

# One round trip reads what the engine asks about the visible widget between trades (the profile's
# selectors are plain CSS for the real site; on any error the per-locator reads are used instead).
_SNAPSHOT_JS = """
(spec) => {
  const roots = Array.from(document.querySelectorAll(spec.root));
  const shown = roots.filter(r => (r.checkVisibility ? r.checkVisibility() : r.getClientRects().length > 0));
  const out = {data: !!document.querySelector(spec.data), visible: shown.length, parts: {}, outcomes: {},
               buy: null, amount: null, submit: null};
  const w = shown[0];
  if (!w) return out;
  for (const [key, sel] of Object.entries(spec.parts)) out.parts[key] = !!w.querySelector(sel);
  for (const [value, sel] of Object.entries(spec.outcomes)) {
    const b = w.querySelector(sel);
    out.outcomes[value] = b ? {text: b.textContent || '', checked: b.getAttribute(spec.checked)} : null;
  }
  const buy = w.querySelector(spec.parts.buy_radio), input = w.querySelector(spec.parts.amount_input);
  const submit = w.querySelector(spec.submit);
  out.buy = buy ? buy.getAttribute(spec.checked) : null;
  out.amount = input ? input.value : null;
  out.submit = submit ? (submit.innerText || submit.textContent || '').trim() : null;
  return out;
}
"""
_READ_JS = """
(spec) => {
  const titled = Array.from(document.querySelectorAll(spec.heading))
    .filter(h => (h.textContent || '').trim() === spec.title);
  if (!titled.length) return null;
  const rows = [];
  for (const head of titled) {
    const box = head.closest(spec.container) || head.parentElement;
    const table = box ? box.querySelector(spec.table) : null;
    if (!table) continue;
    const names = Array.from(table.querySelectorAll(spec.header)).map(th => (th.textContent || '').trim());
    for (const tr of table.querySelectorAll(spec.row)) {
      const cells = {}, links = {};
      Array.from(tr.children).forEach((td, i) => {
        const name = names[i];
        if (!name) return;
        cells[name] = (td.textContent || '').trim();
        const a = td.querySelector(spec.link);
        links[name] = a ? a.getAttribute('href') : null;
      });
      rows.push({cells: cells, links: links});
    }
  }
  return rows;
}
"""


def read_snapshot(page: Page, site: SiteProfile) -> dict | None:
    w = site.widget
    spec = {"root": w["root"], "data": site.page["event_data"], "submit": w["submit_button"],
            "checked": w["checked_attribute"],
            "parts": {k: w[k] for k in ("buy_radio", "order_type_switch", "submit_button", "amount_input")},
            "outcomes": {v: fill(w["outcome_button"], value=v) for v in ("0", "1")}}
    try:
        return page.evaluate(_SNAPSHOT_JS, spec)
    except PlaywrightError:
        return None


def spec(site: SiteProfile) -> dict:
    r = site.records
    return {"heading": r["heading"], "title": r["history_title"], "container": r["container"], "table": r["table"],
            "header": r["header_cell"], "row": r["row"], "link": r["link"]}


def read_rows(page: Page, site: SiteProfile) -> list[OrderRow] | None:
    """Every History row on `page` (in the page's order: newest first on the replica), or None when
    the page shows no History panel (not loaded, logged out, another layout)."""
    try:
        raw = page.evaluate(_READ_JS, spec(site))
    except PlaywrightError:
        return None
    if raw is None:
        return None
    return [record_fields(r.get("cells") or {}, r.get("links") or {}, site.columns) for r in raw
            if isinstance(r, dict)]
