"""core.json_text.indented writes exactly json.dumps(indent=2, allow_nan=False)'s text (the signal files'
fast path), byte for byte, on random documents of the shapes it serves and of the shapes it hands back."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from core.durable_files import json_bytes
from core.json_text import indented

SCALARS = [None, True, False, 0, -1, 7, 2**70, -(2**65), 0.0, -0.0, 1.0, 0.1, 1e-7, 123456.789, 1e100, -2.5e-300,
           "", "a", "é ü — 中文", "line\nbreak\t\"quoted\" \\ \x00\x1f", "\u2028", "😀"]


def _random_doc(rng: random.Random, depth: int = 0) -> dict:
    doc = {}
    for i in range(rng.randint(0, 8)):
        key = rng.choice(["k", "price", "é", "a b", "\"q\"", ""]) + str(i)
        if depth < 3 and rng.random() < 0.25:
            doc[key] = _random_doc(rng, depth + 1)
        else:
            doc[key] = rng.choice(SCALARS) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
    return doc


def _same(obj) -> None:
    assert indented(obj) == json.dumps(obj, indent=2, allow_nan=False)


def test_random_documents_are_written_exactly_as_json_dumps():
    rng = random.Random(14)
    for _ in range(2000):
        _same(_random_doc(rng))


@pytest.mark.parametrize("obj", SCALARS + [{}, {"a": {}}, {"a": {"b": {"c": {"d": 1}}}}])
def test_scalars_and_empty_dicts(obj):
    _same(obj)


@pytest.mark.parametrize("obj", [{"a": [1, 2, {"b": None}]}, {"a": np.float64(0.25)},
                                 {"a": True, "b": np.float64(-1.5)}, {1: "int key"},
                                 {"a": (1, 2)}, [1, {"a": 2}], {"a": {"b": [], "c": 1}}])
def test_other_shapes_are_handed_to_json_dumps(obj):
    _same(obj)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_like_json_dumps(bad):
    with pytest.raises(ValueError):
        json.dumps({"x": bad}, indent=2, allow_nan=False)
    with pytest.raises(ValueError):
        indented({"a": 1, "x": {"y": bad}})


def test_what_json_cannot_hold_is_a_type_error():
    with pytest.raises(TypeError):
        indented({"a": object()})


def test_a_signal_document_and_the_files_text():
    doc = {"timestamp": "2026-11-30T22:46:26.396Z", "direction": "UP", "confidence": 95.0, "price": 91128.5,
           "basis": {"momentum_30s": 1.1174, "volatility_state": "expanding", "score": 0.8}, "prob_up": 0.9587,
           "window": {"start": "2026-11-30T22:45:00Z", "open_price": 90000.0, "seconds_left": 813.603},
           "seq": 3052, "stale": False, "reason": None, "feed": {"accepted": 3050, "dropped_by_kind": {}}}
    _same(doc)
    assert json_bytes(doc) == json.dumps(doc, indent=2, allow_nan=False).encode() + b"\n"


def test_iso_utc_writes_what_datetime_writes():
    """window_grid.iso_utc keeps each second's text: the same text as formatting the datetime every time,
    at microsecond rounding edges too (x.9999996 is the next second; .0000004 shows no milliseconds)."""
    import datetime as dt

    from core.window_grid import iso_utc

    def formatted(ts: float) -> str:
        d = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
        if d.microsecond:
            return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")

    rng = random.Random(3)
    cases = [rng.uniform(0, 4e9) for _ in range(20000)] + [1.7e9 + k / 1e6 for k in range(2000)]
    cases += [1796078700.0, 1796078700.9999996, 1796078700.0000004, 1796078700.0000005, 1796078700.9999995, 0.0]
    assert [iso_utc(t) for t in cases] == [formatted(t) for t in cases]
