"""The typed signal document shared by the writer (signal_engine) and the reader (executor)."""

from __future__ import annotations

import json

from core import signal_doc
from core.signal_doc import SignalDoc, SignalWindow
from executor import decision

W0 = 1_767_225_600


def test_what_the_writer_writes_the_reader_reads_back():
    doc = SignalDoc(timestamp=W0 + 42.12, asset="BTC", direction="UP", confidence=74.0, prob_up=0.57,
                    price=89617.0, window=SignalWindow(W0, W0 + 900, 89580.1, 857.9, "btc-updown-15m-x"),
                    stale=False, seq=18231, source="binance", basis={"score": 0.65})
    on_disk = json.loads(json.dumps({**doc.to_dict(), "extra": "ignored"}))
    back, problem = signal_doc.parse(on_disk)
    assert problem is None and back == doc
    assert set(on_disk) >= {"timestamp", "direction", "confidence", "price", "basis", "asset", "prob_up", "window",
                            "source", "seq", "stale"}                      # ARCHITECTURE.md's schema


def test_parsing_is_lenient_and_the_decision_names_what_is_unusable():
    p = decision.Params("edge", 60, 0.03, 0, 900, 3, 0.01, 0.99, 0.07, 1.0)
    assert signal_doc.parse([1])[0] is None and "JSON object" in signal_doc.parse([1])[1]
    bad, _ = signal_doc.parse({"timestamp": "yesterday", "prob_up": float("nan"), "seq": True, "stale": "yes"})
    assert bad.timestamp is None and bad.prob_up is None and bad.seq is None and bad.stale is False
    base = SignalDoc(timestamp=W0 + 10, asset="BTC", direction="UP", confidence=80, prob_up=0.9, price=1.0,
                     window=SignalWindow(W0, W0 + 900, 1.0, 890, None), stale=False).to_dict()
    cases = {
        "signal is stale": {**base, "stale": True, "timestamp": None},        # stale is said first
        "no valid timestamp": {**base, "timestamp": "x"},
        "is for ETH, not BTC": {**base, "asset": "eth"},
        "no valid window.start": {**base, "window": None},
        "another window": {**base, "window": {**base["window"], "start": "2026-01-01T00:15:00Z"}},
    }
    for want, raw in cases.items():
        d = decision.decide(p, "BTC", W0, W0 + 900, W0 + 11, raw, None, 0.5, 0.5, False)
        assert d.action == "wait" and want in d.reason, (want, d.reason)
    d = decision.decide(p, "BTC", W0, W0 + 900, W0 + 11, base, None, 0.5, 0.5, False)
    assert d.action == "trade" and d.side == "UP"
