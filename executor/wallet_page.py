"""Page object of the wallet popup (MetaMask 13's signature page, or the replica's copy of it).

Every selector comes from the wallet profile; every wait has an explicit timeout through the
market page's `Waiter`, so the heartbeat keeps ticking and SIGTERM is noticed mid-step.

Reading a request (`read_request`, one round trip): the origin, the title, the primary-type row, every
message row (`confirmation_data-<field>-index-<i>`, nested rows keyed by their chain of ids) and the full
typed data as the message section's copy button copies it. MetaMask copies with the copy-to-clipboard
package (a selected span and execCommand("copy"), ui/hooks/useCopyToClipboard) or, in newer builds,
navigator.clipboard.writeText: the page script takes the text from both for the duration of the click
and cancels the write, so no clipboard permission is needed and the user's clipboard is left untouched.
"""

from __future__ import annotations

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from executor.pages import QUICK_MS, StepTimeout, Waiter, _visible
from executor.profiles import WalletProfile
from executor.wallet_guard import WalletRequest

_READ_REQUEST_JS = r"""
async (spec) => {
  const first = (sels) => { for (const s of sels) { const el = document.querySelector(s); if (el) return el; }
                            return null; };
  const text = (sels) => { const el = first(sels); return el ? (el.textContent || '').trim() : null; };
  const rows = {};
  const idAttr = (spec.row.match(/^\[([\w-]+)/) || [])[1];   // data_row is "[<attribute>^='<prefix>']"
  const section = idAttr ? first(spec.section) : null;
  if (section) {
    for (const el of section.querySelectorAll(spec.row)) {
      const path = [];
      for (let n = el; n && n !== section; n = n.parentElement) {
        if (n.matches(spec.row)) path.unshift(n.getAttribute(idAttr));
      }
      rows[path.join('/')] = (el.textContent || '').trim();
    }
  }
  let copied = null, copyError = null;
  const copyIcon = first(spec.copy);
  if (!copyIcon) {
    copyError = 'no copy button in the message section';
  } else {
    // Take the text, and leave the user's clipboard alone: the copy is cancelled before the wallet's own
    // handler runs, and writeText resolves without writing.
    const onCopy = (ev) => { const s = String(window.getSelection() || ''); if (s) copied = s;
                             ev.stopImmediatePropagation(); ev.preventDefault(); };
    const clip = navigator.clipboard;
    const write = clip && clip.writeText ? clip.writeText : null;
    window.addEventListener('copy', onCopy, true);
    if (write) clip.writeText = function (t) { copied = String(t); return Promise.resolve(); };
    try { copyIcon.click(); await new Promise((r) => setTimeout(r, 0)); }
    catch (e) { copyError = 'the copy button failed: ' + e; }
    finally { window.removeEventListener('copy', onCopy, true); if (write) clip.writeText = write; }
    if (copied === null && !copyError) copyError = 'the copy button copied nothing';
  }
  return {origin: text(spec.origin), title: text(spec.title), primaryType: text(spec.primaryType), rows,
          typed: copied, copyError};
}
"""


# Is a confirm button still there, enabled and shown? (one round trip, no waiting)
_CONFIRM_PENDING_JS = """
(sels) => sels.some((s) => { const b = document.querySelector(s);
                             return !!b && !b.disabled && b.getClientRects().length > 0; })
"""


class WalletAlert(Exception):
    """The wallet raised a danger alert instead of signing: nothing was signed (the message is its text)."""


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

    def read_request(self) -> WalletRequest:
        """The request as the wallet shows it, with its full typed data copied from the message section."""
        sel = self.wallet.selectors
        spec = {"origin": sel.get("origin", []), "title": sel.get("title", []),
                "primaryType": sel.get("primary_type", []), "section": sel.get("message_section", []),
                "copy": sel.get("copy_message", []), "row": self.wallet.data_row}
        try:
            got = self.page.evaluate(_READ_REQUEST_JS, spec)
        except PlaywrightError as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            return WalletRequest(None, None, None, {}, None, f"the popup could not be read: {first}")
        got = got if isinstance(got, dict) else {}
        rows = got.get("rows") if isinstance(got.get("rows"), dict) else {}
        return WalletRequest(got.get("origin") or None, got.get("title") or None, got.get("primaryType"),
                             {str(k): str(v) for k, v in rows.items()}, got.get("typed") or None,
                             got.get("copyError"))

    def confirm(self) -> None:
        """Press the wallet's confirm. A danger alert opens its modal instead of signing: then press the
        modal's cancel and raise WalletAlert (nothing signed). The scroll button is pressed only when the
        confirm button is not enabled yet (MetaMask 13 does not gate signatures on it; legacy versions did)."""
        btn = self.any_of("confirm")

        def ready() -> bool:
            return _visible(btn) and btn.is_enabled()
        if not ready():
            if self.visible("scroll_button"):
                self.any_of("scroll_button").click(timeout=self.timeout * 1000)   # legacy wallets gate on it
            self.waiter.until(ready, self.timeout, "confirm", "the wallet's confirm button to be enabled")
        btn.click(timeout=self.timeout * 1000)
        if not self.wallet.selectors.get("alert_modal_submit"):
            return

        def after() -> str | None:
            if self.page.is_closed():
                return "signed"
            if self.visible("alert_modal_submit"):
                return "alert"
            try:   # no auto-waiting locator call here: the button goes away as the wallet signs
                pending = self.page.evaluate(_CONFIRM_PENDING_JS, self.wallet.selectors["confirm"])
            except PlaywrightError:
                return "signed"   # the popup closed while we looked
            return None if pending else "signed"
        try:
            state = self.waiter.until(after, self.timeout, "confirm", "the wallet to sign or raise an alert",
                                      interruptible=False)
        except StepTimeout:
            return   # pressed, and no alert showed: the order's outcome is judged from the venue
        if state == "alert":
            text = self._text("alert_modal_text") or "a danger alert (no text)"
            self.any_of("alert_modal_cancel").click(timeout=self.timeout * 1000)
            raise WalletAlert(text)

    def _text(self, key: str) -> str | None:
        if not self.visible(key):
            return None
        try:
            return (self.any_of(key).text_content(timeout=QUICK_MS) or "").strip() or None
        except PlaywrightError:
            return None

    def reject(self) -> None:
        if self.visible("alert_modal_cancel"):   # an open alert modal covers the footer
            self.any_of("alert_modal_cancel").click(timeout=self.timeout * 1000)
        btn = self.any_of("cancel")
        self.waiter.until(lambda: _visible(btn), self.timeout, "reject", "the wallet's cancel button")
        btn.click(timeout=self.timeout * 1000)
