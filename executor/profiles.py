"""Selector maps loaded from JSON: the site profile (market page) and the wallet profile (popup).

No selector lives in Python: every selector the executor uses is read here from
profiles/sites/<SITE_PROFILE>.json and profiles/wallets/<WALLET_PROFILE>.json. Templates use
{asset}, {side}, {slug} and {field}; `fill` substitutes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SITE_PAGE_KEYS = ("toast_success", "toast_error", "orders_panel", "order_row_for_slug")
SITE_CARD_KEYS = ("root", "slug_attribute", "window_start_attribute", "outcome_button", "outcome_price",
                  "amount_input", "submit_button")
SITE_ROW_ATTRS = ("side", "amount", "status")
WALLET_LIST_KEYS = ("unlock_password", "unlock_submit", "confirm", "cancel", "origin")
WALLET_FIELDS = ("primary_type", "side", "amount", "market")


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
    page: dict[str, str]
    card: dict[str, str]
    row_attrs: dict[str, str]
    verified: bool

    @classmethod
    def load(cls, path: Path) -> SiteProfile:
        data = _load(path)
        page, card, rows = data.get("page", {}), data.get("card", {}), data.get("order_row_attributes", {})
        for section, keys, got in (("page", SITE_PAGE_KEYS, page), ("card", SITE_CARD_KEYS, card),
                                   ("order_row_attributes", SITE_ROW_ATTRS, rows)):
            if not isinstance(got, dict):
                raise ProfileError(f"site profile {path}: '{section}' must be an object")
            for key in keys:
                if not isinstance(got.get(key), str) or not got.get(key):
                    raise ProfileError(f"site profile {path}: missing selector '{section}.{key}'")
        return cls(str(data.get("name", Path(path).stem)), Path(path), dict(page), dict(card), dict(rows),
                   bool(data.get("verified", False)))

    def required_selectors(self) -> dict[str, str]:
        """The selectors a trade needs (name -> template), for the probe and the markup check."""
        out = {f"page.{k}": self.page[k] for k in SITE_PAGE_KEYS}
        out.update({f"card.{k}": self.card[k] for k in SITE_CARD_KEYS if not k.endswith("_attribute")})
        return out

    def optional_selectors(self) -> dict[str, str]:
        out = {f"page.{k}": v for k, v in self.page.items() if k not in SITE_PAGE_KEYS}
        out.update({f"card.{k}": v for k, v in self.card.items()
                    if k not in SITE_CARD_KEYS and not k.endswith("_attribute")})
        return out


@dataclass(frozen=True)
class WalletProfile:
    name: str
    path: Path
    popup_url_pattern: re.Pattern
    selectors: dict[str, list[str]]
    data_row: str
    data_row_value: str
    fields: dict[str, str]
    order_primary_type: str
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
        fields = data.get("fields", {})
        for key in WALLET_FIELDS:
            if not isinstance(fields, dict) or not isinstance(fields.get(key), str):
                raise ProfileError(f"wallet profile {path}: missing 'fields.{key}'")
        for key in ("data_row", "data_row_value", "order_primary_type"):
            if not isinstance(data.get(key), str) or not data.get(key):
                raise ProfileError(f"wallet profile {path}: missing '{key}'")
        if not isinstance(data.get("order_guard", {}), dict):
            raise ProfileError(f"wallet profile {path}: 'order_guard' must be an object")
        return cls(str(data.get("name", Path(path).stem)), Path(path), pattern, selectors, data["data_row"],
                   data["data_row_value"], dict(fields), data["order_primary_type"], dict(data.get("order_guard", {})))

    def is_popup_url(self, url: str) -> bool:
        return bool(self.popup_url_pattern.search(url or ""))
