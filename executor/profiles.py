"""Selector maps loaded from JSON: the site profile (market page) and the wallet profile (popup).

No selector lives in Python: every selector the executor uses is read here from
profiles/sites/<SITE_PROFILE>.json and profiles/wallets/<WALLET_PROFILE>.json. Templates use
{asset}, {asset_lower}, {side}, {slug}, {value} and {field}; `fill` substitutes them.

The site profile (one for the real site and the replica alike: profiles/sites/polymarket.json):
`urls` (the event page and portfolio paths), `page` (the embedded data script, the logged-in
link, "Go to live market", the hub's event links, the price to beat, toasts), `widget` (the
trade widget's root and its parts, each found inside the visible root), `records` (the
Positions/History panels: their heading and the column names read), `texts` (the submit's
label, the words of a button that would not place an order) and `sources` (where each entry
comes from).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SITE_KEYS = {
    "urls": ("event", "portfolio"),
    "page": ("event_data", "logged_in", "go_live", "hub_event_link", "toast_success", "toast_error"),
    "widget": ("root", "outcome_button", "buy_radio", "order_type_switch", "amount_input", "submit_button",
               "checked_attribute", "checked_value"),
    "records": ("heading", "history_title", "positions_title", "container", "table", "header_cell", "row", "link"),
    "texts": ("buy_label",),
}
RECORD_COLUMNS = ("market", "outcome", "price", "shares", "amount", "status", "id")
# Needed on an idle event page (the probe and the markup check); the amount input exists in
# Market mode only, and the toasts and History rows during and after an order.
SITE_REQUIRED = ("page.event_data", "widget.root", "widget.outcome_button", "widget.buy_radio",
                 "widget.order_type_switch", "widget.submit_button")
WALLET_LIST_KEYS = ("unlock_password", "unlock_submit", "confirm", "cancel", "origin")


class ProfileError(Exception):
    """A profile file is missing, unreadable or lacks a required key (the message names it)."""


def fill(template: str, **values: str) -> str:
    """Substitute {asset}/{side}/{slug}/{field} without touching other braces."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def _load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ProfileError(f"profile file {path} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile file {path} could not be read: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile file {path} must hold a JSON object")
    return data


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"expected a selector or a list of selectors, got {value!r}")


@dataclass(frozen=True)
class SiteProfile:
    name: str
    path: Path
    urls: dict[str, str]
    page: dict[str, str]
    widget: dict[str, str]
    records: dict[str, str]
    columns: dict[str, str]          # record field -> the column header read
    texts: dict[str, str]
    not_an_order: tuple[str, ...]    # lower-case words of a trade button that places no order
    sources: dict[str, str]
    verified: bool

    @classmethod
    def load(cls, path: Path) -> SiteProfile:
        data = _load(path)
        got: dict[str, dict] = {}
        for section, keys in SITE_KEYS.items():
            part = data.get(section, {})
            if not isinstance(part, dict):
                raise ProfileError(f"site profile {path}: '{section}' must be an object")
            for key in keys:
                if not isinstance(part.get(key), str) or not part.get(key):
                    raise ProfileError(f"site profile {path}: missing selector '{section}.{key}'")
            got[section] = {k: v for k, v in part.items() if isinstance(v, str)}
        columns = data["records"].get("columns", {})
        for key in RECORD_COLUMNS:
            if not isinstance(columns, dict) or not isinstance(columns.get(key), str) or not columns.get(key):
                raise ProfileError(f"site profile {path}: missing 'records.columns.{key}'")
        words = data["texts"].get("not_an_order", [])
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            raise ProfileError(f"site profile {path}: 'texts.not_an_order' must be a list of words")
        sources = data.get("sources", {})
        return cls(str(data.get("name", Path(path).stem)), Path(path), got["urls"], got["page"], got["widget"],
                   got["records"], {k: str(v) for k, v in columns.items()}, got["texts"],
                   tuple(w.lower() for w in words), dict(sources) if isinstance(sources, dict) else {},
                   bool(data.get("verified", False)))

    def selector(self, name: str) -> str:
        """'widget.root' -> its template."""
        section, key = name.split(".", 1)
        return {"page": self.page, "widget": self.widget}[section][key]

    def required_selectors(self) -> dict[str, str]:
        """The selectors an idle event page must match (name -> template), for the probe and the markup check."""
        return {name: self.selector(name) for name in SITE_REQUIRED}

    def optional_selectors(self) -> dict[str, str]:
        out = {f"page.{k}": v for k, v in self.page.items() if f"page.{k}" not in SITE_REQUIRED
               and k not in ("price_to_beat_label", "hub_event_link")}
        out["widget.amount_input"] = self.widget["amount_input"]
        return out

    def not_an_order_word(self, text: str | None) -> str | None:
        """The word that makes a trade button's `text` a non-order (Deposit, Log in, Unavailable...)."""
        low = " ".join((text or "").lower().split())
        return next((w for w in self.not_an_order if w in low), None)

    def event_path(self, slug: str) -> str:
        return fill(self.urls["event"], slug=slug)


@dataclass(frozen=True)
class WalletProfile:
    name: str
    path: Path
    popup_url_pattern: re.Pattern
    selectors: dict[str, list[str]]
    data_row: str
    order_guard: dict = field(default_factory=dict)   # executor.order_guard.Allowed.from_profile's input

    @classmethod
    def load(cls, path: Path) -> WalletProfile:
        data = _load(path)
        try:
            pattern = re.compile(data["popup_url_pattern"])
        except KeyError:
            raise ProfileError(f"wallet profile {path}: missing 'popup_url_pattern'") from None
        except (re.error, TypeError) as exc:
            raise ProfileError(f"wallet profile {path}: 'popup_url_pattern' is not a valid regex: {exc}") from None
        selectors: dict[str, list[str]] = {}
        for key, value in data.items():
            if key in ("name", "note", "popup_url_pattern", "data_row", "data_row_value", "fields",
                       "order_primary_type", "order_guard"):
                continue
            try:
                selectors[key] = _as_list(value)
            except ValueError as exc:
                raise ProfileError(f"wallet profile {path}: '{key}': {exc}") from None
        for key in WALLET_LIST_KEYS:
            if not selectors.get(key):
                raise ProfileError(f"wallet profile {path}: missing selector '{key}'")
        if not isinstance(data.get("data_row"), str) or not data.get("data_row"):
            raise ProfileError(f"wallet profile {path}: missing 'data_row'")
        if not isinstance(data.get("order_guard", {}), dict):
            raise ProfileError(f"wallet profile {path}: 'order_guard' must be an object")
        return cls(str(data.get("name", Path(path).stem)), Path(path), pattern, selectors, data["data_row"],
                   dict(data.get("order_guard", {})))

    def is_popup_url(self, url: str) -> bool:
        return bool(self.popup_url_pattern.search(url or ""))
