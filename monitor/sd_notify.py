"""systemd's notify protocol for the monitor when it runs as a `Type=notify` service (sd_notify(3)).

The protocol: one datagram of `KEY=value` lines to the AF_UNIX socket named by NOTIFY_SOCKET (a
leading '@' names an abstract-namespace socket). Outside systemd NOTIFY_SOCKET is unset and all of
this does nothing. The policy (ServiceNotifier.update, called once per monitor tick):

- `READY=1` once, when the first start of every child is over (`start` returns its screen then too);
- `STATUS=<one line>` whenever the summary changes (`systemctl --user status` shows it);
- `WATCHDOG=1` every WATCHDOG_USEC/2 from READY=1 on, but only while the children are healthy: no child whose
  process is alive (running, or being stopped) has a heartbeat older than its limit. A hung child
  is killed and restarted by the monitor itself within seconds, and the pings resume; if that does
  not work (a process that survives KILL), or the monitor's own loop hangs, the pings stay away for
  WatchdogSec and systemd restarts the whole service. Children in back-off, FATAL, held down or
  stopped have no live process to be stale: the monitor's own schedule handles them.
- `STOPPING=1` when the monitor begins its shutdown.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping

from .states import ChildState

log = logging.getLogger("monitor")

ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")  # systemd's; never passed on to children


def send(message: str, address: str | None, warn: bool = True) -> bool:
    """One notify datagram to `address` (NOTIFY_SOCKET's value); False when there is none or it failed."""
    if not address or address[0] not in "/@":
        return False  # unset, or a kind of socket this does not speak (vsock:)
    target = "\0" + address[1:] if address[0] == "@" else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # never wait for systemd: a full queue drops this message, not the monitor
        try:
            sock.sendto(message.encode(), target)
        except OSError as exc:
            if warn:
                log.warning("monitor: notify message to %s failed (%s); carrying on (said once until one"
                            " succeeds)", address, exc.strerror or exc)
            return False
    return True


LIVE_PROCESS = (ChildState.RUNNING, ChildState.STOPPING)


def health(children: Iterable, now: float) -> tuple[bool, str]:
    """(healthy, a one-line summary without figures that change every tick)."""
    kids = list(children)
    stale = []
    for c in kids:
        if c.state not in LIVE_PROCESS or not c.spec.heartbeat or not c.started_at:
            continue
        age = c.heartbeat_age(now)
        if age is not None and age > c.spec.stale_after:
            stale.append(f"{c.name} (no heartbeat within its {c.spec.stale_after:g} s limit)")
    running = sum(1 for c in kids if c.state == ChildState.RUNNING)
    others = ", ".join(f"{c.name} {c.state.value}" for c in kids if c.state != ChildState.RUNNING)
    text = f"{running}/{len(kids)} running" + (f" ({others})" if others else "")
    if stale:
        return False, f"{text}; STALE: {', '.join(stale)}; watchdog pings paused"
    return True, f"{text}; heartbeats fresh"


class ServiceNotifier:
    """What the monitor tells systemd; inert when NOTIFY_SOCKET is unset. Never raises on a send."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        self.interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if self.address and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval = int(usec) / 2e6  # half the timeout, as sd_watchdog_enabled(3) advises
        self.ready = False
        self.status: str | None = None
        self.last_ping: float | None = None
        self.failing = False  # the last send failed (warned once, not every tick)

    def _send(self, message: str) -> None:
        self.failing = not send(message, self.address, warn=not self.failing)

    def update(self, now: float, children: Iterable, first_starts_done: bool) -> None:
        """`now`: the monitor's clock (wall time, as the heartbeat files' mtimes); the pings are paced
        on the monotonic clock, so a clock step never pauses them."""
        if self.address is None:
            return
        healthy, text = health(children, now)
        mono = time.monotonic()
        lines = []
        if text != self.status:
            self.status = text
            lines.append(f"STATUS={text}")
        if first_starts_done and not self.ready:
            self.ready = True
            lines.append("READY=1")
        due = self.last_ping is None or mono - self.last_ping >= (self.interval or 0.0)
        if self.interval is not None and self.ready and healthy and due:
            self.last_ping = mono
            lines.append("WATCHDOG=1")
        if lines:
            self._send("\n".join(lines))

    def stopping(self) -> None:
        if self.address is not None:
            self._send("STOPPING=1\nSTATUS=stopping every child")


__all__ = ["ENV_VARS", "ServiceNotifier", "health", "send"]
