"""What MetaMask 12-13 shows on its signature page -> the EIP-712 typed dict `order_guard.check_order` reads.

MetaMask renders the message as a tree of rows (MetaMask/metamask-extension's DataTree component,
dataTree.tsx under ui/pages/confirmations/components/confirm/row/, path inferred from its imports): one row
per field, test id `confirmation_data-<field>-index-<i>`, where i is the field's position in its struct (the
struct's order in `types`, restarting at 0 in each nested struct); a struct
field (TypedDataSign.contents) holds a nested tree of rows. Values are shown raw: uint256 amounts in base units
(makerAmount is not one of MetaMask's token-unit fields), the row's text may start with its label
("TokenId:"). Address values are rendered by an address component that may show a shortened form or a
pet name: those are refused (a shortened address proves nothing).

Row-dict conventions for `typed_from_rows(rows)` (key -> the row's text):
- `confirmation_data-<field>-index-<i>`: a message field;
- a nested row's key is the chain of row ids from the outermost row, joined by "/", e.g.
  `confirmation_data-contents-index-0/confirmation_data-tokenId-index-3`; a struct row's own text is
  ignored when it has children;
- `primaryType`: the text of the page's primary-type row (`confirmation__message-primary-type`);
- `domain.name`, `domain.version`, `domain.chainId`, `domain.verifyingContract`: the domain as shown (the
  replica shows all four; MetaMask 13 shows only verifyingContract, under "Interacting with", and the
  network name: without name and version the guard rejects, so on the real page read the message
  section's copied JSON with `typed_from_json` instead).
A malformed row id, a repeated or missing index, or an unknown `domain.` key raises RowsError.
"""

from __future__ import annotations

import json
import re

from executor.order_guard import Allowed, Intended, check_order

ROW_ID = re.compile(r"^confirmation_data-([A-Za-z_$][A-Za-z0-9_$]*)-index-([0-9]+)$")
DOMAIN_KEYS = ("name", "version", "chainId", "verifyingContract")


class RowsError(ValueError):
    """The rows cannot be read as typed data (the message names the row)."""


def _value(label: str, text) -> str:
    if not isinstance(text, str):
        raise RowsError(f"row {label!r} has no text")
    value = text.strip()
    shown = label[:1].upper() + label[1:] + ":"
    if value.startswith(shown):
        value = value[len(shown):].strip()
    return value


def _parse_id(part: str) -> tuple[str, int]:
    m = ROW_ID.match(part.strip())
    if not m:
        raise RowsError(f"row id {part!r} is not confirmation_data-<field>-index-<i>")
    return m.group(1), int(m.group(2))


def _build(tree: dict, where: str) -> dict:
    indices = sorted(entry["index"] for entry in tree.values())
    if indices != list(range(len(indices))):
        raise RowsError(f"the rows under {where} skip or repeat an index: {indices}")
    out = {}
    for name, entry in sorted(tree.items(), key=lambda item: item[1]["index"]):
        if entry["children"]:
            out[name] = _build(entry["children"], f"{where}.{name}")
        else:
            out[name] = _value(name, entry["text"])
    return out


def typed_from_rows(rows: dict[str, str]) -> dict:
    """{row key: text} (conventions in the module docstring) -> {primaryType, domain, message}."""
    typed: dict = {"primaryType": None, "domain": {}, "message": {}}
    tree: dict = {}
    for key, text in rows.items():
        if key == "primaryType":
            typed["primaryType"] = _value("primaryType", text) or None
            continue
        if key.startswith("domain."):
            name = key[len("domain."):]
            if name not in DOMAIN_KEYS:
                raise RowsError(f"unknown domain row {key!r}")
            typed["domain"][name] = _value(name, text)
            continue
        node = tree
        path = [_parse_id(part) for part in key.split("/")]
        for depth, (name, index) in enumerate(path):
            entry = node.setdefault(name, {"index": index, "children": {}, "text": None})
            if entry["index"] != index:
                raise RowsError(f"row {key!r}: field {name!r} appears at index {entry['index']} and {index}")
            if depth == len(path) - 1:
                entry["text"] = text
            node = entry["children"]
    typed["message"] = _build(tree, "message")
    return typed


def _no_float(text: str):
    raise RowsError(f"typed data holds a non-integer number {text!r}")


def typed_from_json(text: str) -> dict:
    """The typed data as JSON text (MetaMask's copy of the message section, or the request itself)."""
    try:
        data = json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except json.JSONDecodeError as exc:
        raise RowsError(f"typed data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RowsError("typed data is not a JSON object")
    return data


def check_rows(rows: dict[str, str], want: Intended, allowed: Allowed) -> str | None:
    """typed_from_rows + check_order; a row that cannot be read is a reason to reject."""
    try:
        typed = typed_from_rows(rows)
    except RowsError as exc:
        return f"unreadable signature page: {exc}"
    return check_order(typed, want, allowed)


_SHORT = re.compile(r"^(0x[0-9a-fA-F]{5})\.{3}([0-9a-fA-F]{5})$")
_FULL = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _leaf_agrees(shown: str, value) -> bool:
    """A row's text against the typed data's value: equal as text; an address may be shortened
    (0x1234567...abcde, MetaMask's shortenAddress) or shown as a name (a pet name, "Account 1")."""
    want = str(value).strip()
    if _FULL.match(want):
        short = _SHORT.match(shown)
        if short:
            return want[:7].lower() == short.group(1).lower() and want[-5:].lower() == short.group(2).lower()
        return shown.lower() == want.lower() or not shown.lower().startswith("0x")
    return shown == want


def _compare(shown, value, where: str) -> str | None:
    if isinstance(value, dict):
        if not isinstance(shown, dict):
            return f"{where} is a struct in the request but a single row on the page"
        for key in shown:
            if key not in value:
                return f"the page shows {where}.{key}, which the request does not carry"
        for key, item in value.items():
            if key not in shown:
                return f"the page shows no row for {where}.{key}"
            why = _compare(shown[key], item, f"{where}.{key}")
            if why:
                return why
        return None
    if isinstance(shown, dict) or not _leaf_agrees(shown, value):
        return f"{where} reads {shown!r} on the page but {value!r} in the request"
    return None


def cross_check(rows: dict[str, str], primary_type: str | None, typed: dict) -> str | None:
    """None when the signature page's rows agree with the request's typed data (the copied JSON): the same
    primary type and, for every message field, a row whose text is that value. Else what differs."""
    shown_type = _value("primaryType", primary_type) if primary_type is not None else None
    if shown_type != typed.get("primaryType"):
        return f"primary type {shown_type!r} on the page, {typed.get('primaryType')!r} in the request"
    try:
        shown = typed_from_rows({k: v for k, v in rows.items() if k != "primaryType" and not k.startswith("domain.")})
    except RowsError as exc:
        return f"unreadable signature page: {exc}"
    return _compare(shown["message"], typed.get("message"), "message")
