"""prob_up v2's parameter file: read and checked (every field named when unusable), and written.

The file is versioned (`model`, `version`, `format`) and written by `python -m backtest fit`
(backtest/fit_cli.py); the signal engine loads it from PROB_MODEL_FILE (signal_engine/publisher.py).
Format 3 (written) has the late-window shift `calibration.kappa`; format 2 (still read) has none
(kappa = 0, the model as it was before the shift).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .vol_model import FILE_FORMAT, KAPPA_MAX, READABLE_FORMATS, LogBlend, VolModel


class ParamsError(ValueError):
    """A parameter file that cannot be used: the message says which field and why."""


def _num(d: dict, key: str, lo: float, hi: float, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ParamsError(f"{where}.{key} must be a number in [{lo:g}, {hi:g}], got {str(v)[:40]!r}")
    return float(v)


def _vector(v, n: int | None, where: str) -> np.ndarray:
    if not isinstance(v, list) or (n is not None and len(v) != n) or not v:
        raise ParamsError(f"{where} must be a list of {n if n else 'some'} positive numbers")
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ParamsError(f"{where} must hold numbers only") from None
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise ParamsError(f"{where} must hold finite positive numbers")
    return a


def _coefs(v, n: int, where: str) -> tuple[float, ...]:
    if not isinstance(v, list) or len(v) != n:
        raise ParamsError(f"{where} must be a list of {n} numbers (one per span)")
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and abs(b) <= 10
               for b in v):
        raise ParamsError(f"{where} must hold finite numbers in [-10, 10]")
    return tuple(float(b) for b in v)


def _blend(d: object, k: int, where: str, ranged: bool) -> LogBlend:
    if not isinstance(d, dict):
        raise ParamsError(f"{where} must be an object with intercept, b_close{', b_range' if ranged else ''}")
    intercept = _num(d, "intercept", -100.0, 100.0, where)
    b_close = _coefs(d.get("b_close"), k, f"{where}.b_close")
    b_range = _coefs(d.get("b_range"), k, f"{where}.b_range") if ranged else None
    if sum(b_close) + sum(b_range or ()) <= 0:
        raise ParamsError(f"{where}: the coefficients must sum to more than 0 (v must grow with the EWMAs)")
    return LogBlend(intercept, b_close, b_range)


def _spans(v, where: str) -> tuple[tuple[float, int, int], ...]:
    if not isinstance(v, list) or not v or not all(isinstance(s, list) and len(s) == 3 for s in v):
        raise ParamsError(f"{where} must be a non-empty list of [half-life min, length, minimum count]")
    out = []
    for i, s in enumerate(v):
        row = dict(zip(("halflife_min", "len", "min_count"), s, strict=True))
        hl = _num(row, "halflife_min", 0.1, 1e5, f"{where}[{i}]")
        n = int(_num(row, "len", 1, 5000, f"{where}[{i}]"))
        out.append((hl, n, int(_num(row, "min_count", 1, n, f"{where}[{i}]"))))
    return tuple(out)


def _kappa(cal: dict, fmt: int, where: str) -> float:
    """calibration.kappa: required in format 3, absent in format 2 (then 0)."""
    if fmt == 2:
        if "kappa" in cal:
            raise ParamsError(f"{where}.kappa is a format 3 field but the file says format 2 (refit)")
        return 0.0
    if "kappa" not in cal:
        raise ParamsError(f"{where}.kappa is missing (format 3 needs the late-window shift; 0 for none)")
    return _num(cal, "kappa", -KAPPA_MAX, KAPPA_MAX, where)


def model_from_dict(asset: str, d: object, fmt: int = FILE_FORMAT) -> VolModel:
    """One asset's section of a parameter file of format `fmt`; ParamsError naming the field when
    unusable."""
    where = f"assets.{asset}"
    if not isinstance(d, dict):
        raise ParamsError(f"{where} must be an object")
    nu = d.get("nu")
    if nu is not None:
        nu = _num(d, "nu", 1.0, 1e6, where)
    cal = d.get("calibration")
    if not isinstance(cal, dict):
        raise ParamsError(f"{where}.calibration must be an object with seconds_left and scale")
    nodes = _vector(cal.get("seconds_left"), None, f"{where}.calibration.seconds_left")
    scale = _vector(cal.get("scale"), nodes.size, f"{where}.calibration.scale")
    if nodes.size > 1 and not np.all(np.diff(nodes) > 0):
        raise ParamsError(f"{where}.calibration.seconds_left must be strictly ascending")
    kappa = _kappa(cal, fmt, f"{where}.calibration")
    spans = _spans(d.get("spans"), f"{where}.spans")
    return VolModel(
        asset=asset.upper(),
        spans=spans,
        close_blend=_blend(d.get("close_blend"), len(spans), f"{where}.close_blend", False),
        range_blend=_blend(d["range_blend"], len(spans), f"{where}.range_blend", True) if "range_blend" in d else None,
        nu=nu,
        season_how=_vector(d.get("season_hour_of_week"), 168, f"{where}.season_hour_of_week"),
        season_moh=_vector(d.get("season_minute_of_hour"), 60, f"{where}.season_minute_of_hour"),
        calib_seconds_left=nodes,
        calib_scale=scale,
        kappa=kappa,
    )


def parse_param_doc(doc: object) -> dict[str, VolModel]:
    if not isinstance(doc, dict):
        raise ParamsError("the file is not a JSON object")
    fmt = doc.get("format")
    if doc.get("model") != "prob_up" or doc.get("version") != 2 or fmt not in READABLE_FORMATS:
        raise ParamsError(f"expected model 'prob_up', version 2, format {' or '.join(map(str, READABLE_FORMATS))};"
                          " got model"
                          f" {str(doc.get('model'))[:20]!r}, version {str(doc.get('version'))[:10]!r},"
                          f" format {str(doc.get('format'))[:10]!r}")
    assets = doc.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise ParamsError("'assets' must be a non-empty object {ASSET: parameters}")
    models = {str(a).upper(): model_from_dict(str(a), d, int(fmt)) for a, d in assets.items()}
    return models


def load_param_file(path: Path | str) -> dict[str, VolModel]:
    """{ASSET: VolModel} from a file written by `python -m backtest fit`; ParamsError (a ValueError)
    saying what is wrong when the file is missing, not JSON, or fails a check."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path} does not exist") from None
    except OSError as exc:
        raise ParamsError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ParamsError(f"{path} is not JSON ({exc})") from None
    try:
        return parse_param_doc(doc)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def write_param_doc(path: Path, models: dict[str, VolModel], meta: dict) -> dict:
    """The versioned parameter document (atomically written); returns it."""
    from core.durable_files import atomic_write_json

    doc = {"model": "prob_up", "version": 2, "format": FILE_FORMAT, **meta,
           "assets": {a: {**vm.to_dict(), **meta.get("per_asset", {}).get(a, {})} for a, vm in models.items()}}
    doc.pop("per_asset", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return doc
