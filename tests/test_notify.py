"""Notifications: a real HTTP webhook on 127.0.0.1; hanging and failing webhooks never slow the caller."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from notify import Notifier, summary_text
from tests.risk_support import WebhookServer, risk_cfg
from tests.waiting import wait_for

PASSWORD = "hunter2-Pa55word"


@pytest.fixture
def webhook():
    servers: list[WebhookServer] = []

    def make(*script) -> WebhookServer:
        srv = WebhookServer(list(script) or [204]).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def notifiers():
    made: list[Notifier] = []

    def make(cfg, **kw) -> Notifier:
        n = Notifier(cfg, **kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close(0)  # stop retrying against servers that are going away


def cfg_for(iso_env, url: str, **over):
    return risk_cfg(iso_env, CLOBBOT_DISCORD_WEBHOOK_URL=url, METAMASK_PASSWORD=PASSWORD, **over)


def paced_loop(send, ticks: int, cadence: float) -> tuple[float, float]:
    """A trading-like loop calling send() once a tick. Returns (longest send() call, total seconds)."""
    tick = threading.Event()  # the loop's own stop event, never set: wait() paces the loop
    start = time.perf_counter()
    longest = 0.0
    for i in range(ticks):
        t0 = time.perf_counter()
        send(i)
        longest = max(longest, time.perf_counter() - t0)
        tick.wait(max(0.0, start + (i + 1) * cadence - time.perf_counter()))
    return longest, time.perf_counter() - start


def test_messages_reach_the_webhook_in_discord_format(iso_env, webhook, notifiers):
    srv = webhook(204)
    n = notifiers(cfg_for(iso_env, srv.url, CLOBBOT_DISCORD_MENTION="<@42>"))
    n.send("start", "executor started, BTC")
    n.send("fill", "BTC UP $10.00 at 0.52")
    n.send("halt", "3 consecutive losses")
    n.send("filled", "ETH DOWN $10.00 at 0.47")  # the executor's name for a fill
    n.send("selector_error", "no Buy button")     # other events keep their own name
    assert n.flush(5)
    contents = [r["body"]["content"] for r in srv.received]
    assert all(r["ctype"] == "application/json" and set(r["body"]) == {"content"} for r in srv.received)
    assert contents == ["**START** [demo] executor started, BTC", "**FILL** [demo] BTC UP $10.00 at 0.52",
                        "<@42> **HALT** [demo] 3 consecutive losses", "**FILL** [demo] ETH DOWN $10.00 at 0.47",
                        "<@42> **SELECTOR_ERROR** [demo] no Buy button"]
    assert n.stats["sent"] == 5 and n.stats["failed"] == 0


def test_no_secret_in_any_message_or_log_line(iso_env, webhook, notifiers, caplog):
    caplog.set_level(logging.DEBUG)
    ok, bad = webhook(204), webhook(500)
    n = notifiers(cfg_for(iso_env, ok.url))
    n.send("fatal", f"crash: posting to {ok.url} failed, password was {PASSWORD}, token {ok.url.split('/')[-1]}")
    assert n.flush(5)
    content = ok.received[0]["body"]["content"]
    assert PASSWORD not in content and "tok3nS3cret" not in content and "/api/webhooks" not in content
    assert "***" in content
    n2 = notifiers(cfg_for(iso_env, bad.url), retries=1, backoff=0.01)
    n2.send("error halt", "x")
    assert n2.flush(5)
    assert "HTTP 500" in caplog.text
    for secret in (PASSWORD, "tok3nS3cret", "/api/webhooks", bad.url, ok.url):
        assert secret not in caplog.text


def test_disabled_without_a_webhook_url(iso_env):
    n = Notifier(risk_cfg(iso_env))
    assert not n.enabled
    n.send("start", "hello")
    assert n._thread is None and n.stats["queued"] == 0
    assert n.flush(0.1)


def test_a_hanging_webhook_never_delays_the_loop(iso_env, webhook, notifiers):
    srv = webhook("hang")
    n = notifiers(cfg_for(iso_env, srv.url), timeout=1.0, retries=1, backoff=0.05)
    longest, total = paced_loop(lambda i: n.send("fill", f"tick {i}"), ticks=20, cadence=0.05)
    # While the loop ran, the worker was stuck in the hanging POST (1 s timeout per attempt).
    assert srv.hanging >= 1 and n.stats["sent"] == 0
    # Margins allow for a loaded 2-core machine; a blocking send() would take >= 1 s here.
    assert longest < 0.1, f"send() blocked the caller for {longest:.3f}s"
    assert total < 20 * 0.05 + 0.3, f"the loop lost its cadence: {total:.3f}s for 1.0s of ticks"


def test_a_500_webhook_is_retried_a_bounded_number_of_times(iso_env, webhook, notifiers):
    srv = webhook(500)
    n = notifiers(cfg_for(iso_env, srv.url), timeout=1.0, retries=2, backoff=0.1)
    # A send() that waited for its retries would take 0.1 + 0.2 s of back-off per message.
    longest, total = paced_loop(lambda i: n.send("settled", f"trade {i} lost"), ticks=3, cadence=0.02)
    assert longest < 0.1, f"send() blocked the caller for {longest:.3f}s"
    assert total < 3 * 0.02 + 0.2, f"the loop lost its cadence: {total:.3f}s"
    assert n.flush(10)
    assert srv.hits == 3 * (2 + 1)  # each message: 1 try + 2 retries, then dropped
    assert n.stats == {"queued": 3, "sent": 0, "failed": 3, "dropped": 0, "attempts": 9}


def test_a_rate_limited_post_is_retried_then_delivered(iso_env, webhook, notifiers):
    srv = webhook(429, 500, 204)
    n = notifiers(cfg_for(iso_env, srv.url), retries=3, backoff=0.01)
    n.send("summary", "all good")
    assert n.flush(5)
    assert srv.hits == 3 and n.stats["sent"] == 1
    assert srv.received[0]["body"]["content"].endswith("all good")


def test_a_refused_webhook_is_not_retried(iso_env, webhook, notifiers):
    srv = webhook(404)
    n = notifiers(cfg_for(iso_env, srv.url), retries=5, backoff=0.01)
    n.send("stop", "bye")
    assert n.flush(5)
    assert srv.hits == 1 and n.stats["failed"] == 1


def test_a_full_queue_drops_without_blocking(iso_env, webhook, notifiers):
    srv = webhook("hang")
    n = notifiers(cfg_for(iso_env, srv.url), timeout=2.0, retries=0, queue_size=2)
    longest, _ = paced_loop(lambda i: n.send("fill", f"m{i}"), ticks=10, cadence=0.0)
    wait_for(lambda: srv.hanging >= 1, 5.0, "the worker to reach the hanging webhook")
    assert longest < 0.1
    assert n.stats["queued"] + n.stats["dropped"] == 10 and n.stats["dropped"] >= 7


def test_an_unreachable_webhook_fails_quietly(iso_env, notifiers):
    srv = WebhookServer([204])
    url = srv.url
    srv.server_close()  # nothing listens on that port any more
    n = notifiers(cfg_for(iso_env, url), timeout=0.5, retries=1, backoff=0.01)
    n.send("start", "x")
    assert n.flush(5)
    assert n.stats["failed"] == 1 and n.stats["attempts"] == 2


def test_summary_is_periodic_and_never_per_tick(iso_env):
    n = Notifier(risk_cfg(iso_env, SUMMARY_INTERVAL=3600))
    t = 1_000_000.0
    due = [n.summary_due(t + s) for s in range(0, 3 * 3600 + 1, 60)]
    assert sum(due) == 3  # once an hour over 3 hours of 1-minute ticks
    assert not any(Notifier(risk_cfg(iso_env, SUMMARY_INTERVAL=0)).summary_due(t + s) for s in range(0, 9000, 60))
    text = summary_text({"day": "2026-01-01", "trades_today": 4, "wins": 3, "losses": 1, "win_rate": 0.75,
                         "pnl_today": 12.5, "fees_today": 0.7, "open_exposure": 10.0, "halted": False,
                         "halt_reason": None})
    assert "3W/1L" in text and "win rate 75%" in text and "+12.50" in text and "trading" in text
