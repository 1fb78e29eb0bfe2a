"""Page object of the wallet popup (MetaMask's confirmation page, or the replica's copy of it).

Every selector comes from the wallet profile; every wait has an explicit timeout through the
market page's `Waiter`, so the heartbeat keeps ticking and SIGTERM is noticed mid-step.
"""

from __future__ import annotations

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from executor.pages import QUICK_MS, Waiter, _visible
from executor.profiles import WalletProfile, fill
from executor.wallet_guard import WalletRequest

# One round trip reads the whole wallet request when the profile's selectors are plain CSS
# (they are for MetaMask); otherwise (or on any error) the slower per-field path is used.
_READ_REQUEST_JS = """
(spec) => {
  const text = (sels) => {
    for (const s of sels) { const el = document.querySelector(s); if (el) return (el.textContent || '').trim(); }
    return null;
  };
  const fields = {};
  for (const [name, rowSel] of Object.entries(spec.rows)) {
    const row = document.querySelector(rowSel);
    if (!row) continue;
    const value = row.querySelector(spec.value);
    fields[name] = ((value || row).textContent || '').trim();
  }
  return {origin: text(spec.origin), title: text(spec.title), fields: fields};
}
"""


class WalletPopup:
    def __init__(self, page: Page, wallet: WalletProfile, waiter: Waiter, step_timeout: float):
        self.page, self.wallet, self.waiter, self.timeout = page, wallet, waiter, step_timeout

    def any_of(self, key: str) -> Locator:
        sels = self.wallet.selectors.get(key, [])
        loc = self.page.locator(sels[0])
        for s in sels[1:]:
            loc = loc.or_(self.page.locator(s))
        return loc.first

    def visible(self, key: str) -> bool:
        return bool(self.wallet.selectors.get(key)) and _visible(self.any_of(key))

    def wait_ready(self) -> str:
        """Wait until the popup shows either the unlock form or a request; return 'locked' or 'request'."""
        def state() -> str | None:
            if self.visible("unlock_password"):
                return "locked"
            if self.visible("confirm") or self.visible("cancel"):
                return "request"
            return None
        return self.waiter.until(state, self.timeout, "popup_ready", "the wallet popup to show a request")

    def unlock(self, password: str) -> None:
        field = self.any_of("unlock_password")
        field.fill(password, timeout=self.timeout * 1000)
        self.any_of("unlock_submit").click(timeout=self.timeout * 1000)
        self.waiter.until(lambda: not self.visible("unlock_password") and
                          (self.visible("confirm") or self.visible("cancel")),
                          self.timeout, "unlock", "the wallet to unlock")

    def clear_password_field(self) -> None:
        """Before any screenshot of the popup: never capture what was typed."""
        if self.visible("unlock_password"):
            try:
                self.any_of("unlock_password").fill("", timeout=QUICK_MS)
            except PlaywrightError:
                pass  # the popup may be gone already; nothing to clear then

    def _text(self, key: str) -> str | None:
        if not self.visible(key):
            return None
        try:
            return (self.any_of(key).text_content(timeout=QUICK_MS) or "").strip() or None
        except PlaywrightError:
            return None

    def read_request(self) -> WalletRequest:
        spec = {"rows": {c: fill(self.wallet.data_row, field=n) for c, n in self.wallet.fields.items()},
                "value": self.wallet.data_row_value, "origin": self.wallet.selectors.get("origin", []),
                "title": self.wallet.selectors.get("title", [])}
        try:
            got = self.page.evaluate(_READ_REQUEST_JS, spec)
            if isinstance(got, dict) and got.get("fields"):
                return WalletRequest(got.get("origin") or None, got.get("title") or None,
                                     {k: str(v) for k, v in got["fields"].items()})
        except PlaywrightError:
            pass  # not plain CSS (or the page changed under us): read field by field below
        return self._read_request_slow()

    def _read_request_slow(self) -> WalletRequest:
        fields: dict[str, str] = {}
        for canonical, name in self.wallet.fields.items():
            row = self.page.locator(fill(self.wallet.data_row, field=name))
            try:
                if row.count() == 0:
                    continue
                value = row.first.locator(self.wallet.data_row_value)
                text = value.first.text_content(timeout=QUICK_MS) if value.count() else row.first.text_content(
                    timeout=QUICK_MS)
            except PlaywrightError:
                continue
            if text is not None:
                fields[canonical] = text.strip()
        return WalletRequest(self._text("origin"), self._text("title"), fields)

    def confirm(self) -> None:
        if self.visible("scroll_button"):
            self.any_of("scroll_button").click(timeout=self.timeout * 1000)
        btn = self.any_of("confirm")
        self.waiter.until(lambda: _visible(btn) and btn.is_enabled(), self.timeout, "confirm",
                          "the wallet's confirm button to be enabled")
        btn.click(timeout=self.timeout * 1000)

    def reject(self) -> None:
        btn = self.any_of("cancel")
        self.waiter.until(lambda: _visible(btn), self.timeout, "reject", "the wallet's cancel button")
        btn.click(timeout=self.timeout * 1000)
