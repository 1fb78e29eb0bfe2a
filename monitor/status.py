"""`status [--json]`: what runs, the current signal, the executor's last window and trade, risk.

Built from files only (supervisor.json, pid files, signal.json, executor.json, trades.jsonl,
risk.json), each read tolerantly; process liveness is checked against the pid files, so the
answer is true even when the monitor itself is gone. Exit 0 (ExitStatus.OK) when the monitor
and every child run, 3 (ExitStatus.NOT_ALL_UP) otherwise.

A child's state is the monitor's (monitor/states.py: running, backoff, FATAL, down, stopped ...)
with two views of its own: `restarting` (the monitor says running, its process is gone) and
`running (unwatched)` (the monitor is gone, the process still runs).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.config import Config
from core.durable_files import iter_jsonl, read_json
from core.exit_codes import ExitStatus
from core.pause import read_pause
from core.window_grid import timestamp_of, utc_day
from risk.guards import state_path as risk_state_path

from . import pidfiles
from .settings import ChildSpec, Paths
from .states import ChildState

RESTARTING = "restarting"
UNWATCHED = "running (unwatched)"
TAIL_BYTES = 512 * 1024


def _ts(value: Any) -> float | None:
    return timestamp_of(value)


def _tail_records(path: Path, max_bytes: int = TAIL_BYTES) -> list[dict]:
    """The last records of a JSONL journal without reading all of a large file."""
    try:
        size = path.stat().st_size
    except OSError:
        return []
    if size <= max_bytes:
        return list(iter_jsonl(path))
    out = []
    with open(path, "rb") as fh:
        fh.seek(size - max_bytes)
        fh.readline()  # drop the partial first line
        for raw in fh:
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue  # a torn or corrupt line: the journal readers skip it too
            if isinstance(obj, dict):
                out.append(obj)
    return out


def _processes(paths: Paths, specs: list[ChildSpec], doc: dict | None, monitor_alive: bool,
               now: float) -> dict[str, dict]:
    names = list(doc.get("order", [])) if doc else []
    for s in specs:
        if s.name not in names:
            names.append(s.name)
    spec_by = {s.name: s for s in specs}
    kids = (doc or {}).get("children", {}) if monitor_alive or doc else {}
    out = {}
    for name in names:
        info = dict(kids.get(name, {})) if isinstance(kids.get(name), dict) else {}
        rec, _problem = pidfiles.read(paths.pid_file(name))
        alive = rec is not None and rec.ident.alive()
        state = info.get("state", ChildState.STOPPED.value)
        if not monitor_alive:
            kept = (ChildState.FATAL.value, ChildState.DOWN.value)
            state = UNWATCHED if alive else (state if state in kept else ChildState.STOPPED.value)
        elif state == ChildState.RUNNING.value and not alive:
            state = RESTARTING
        pid = rec.ident.pid if alive and rec else None
        started = rec.started_at if alive and rec else None
        beats = [Path(p) for p in info.get("heartbeat", [])] or (list(spec_by[name].heartbeat)
                                                                 if name in spec_by else [])
        mtimes = []
        for p in beats:
            try:
                mtimes.append(p.stat().st_mtime)
            except OSError:
                continue  # not written yet
        entry: dict[str, Any] = {
            "state": state, "pid": pid,
            "uptime_s": round(now - started, 1) if started else None,
            "restarts": info.get("restarts", 0), "failed_starts": info.get("failed_starts", 0),
            "requested_restarts": info.get("requested_restarts", 0),
            "heartbeat_age_s": round(now - max(mtimes), 1) if mtimes and alive else None,
            "stale_after_s": info.get("stale_after"),
        }
        if info.get("next_start_at") and state == ChildState.BACKOFF.value:
            entry["restart_in_s"] = round(max(0.0, info["next_start_at"] - now), 1)
        if isinstance(info.get("retry_at"), (int, float)) and state == ChildState.FATAL.value:
            entry["retry_in_s"] = round(max(0.0, info["retry_at"] - now), 1)
        if info.get("fatal_retries"):
            entry["fatal_retries"] = info["fatal_retries"]
        if info.get("last_exit"):
            entry["last_exit"] = info["last_exit"]
        if info.get("fatal_reason"):
            entry["fatal_reason"] = info.get("fatal_reason")
        if paths.down_file(name).exists():
            entry["held_down"] = str(paths.down_file(name))
            last = info.get("last_exit") or {}
            if state == ChildState.DOWN.value and last.get("reason") == "down" \
                    and isinstance(last.get("at"), (int, float)):
                entry["down_for_s"] = round(max(0.0, now - last["at"]), 1)  # since the monitor stopped it
        out[name] = entry
    return out


def _signal(cfg: Config, now: float, path: Path | None = None) -> dict | None:
    path = cfg.signal_path if path is None else path
    res = read_json(path)
    if not res.ok or not res.data:
        return {"problem": res.problem, "path": str(path)}
    d = res.data
    ts = _ts(d.get("timestamp"))
    if ts is None:
        try:
            ts = path.stat().st_mtime
        except OSError:
            ts = None
    return {"direction": d.get("direction"), "confidence": d.get("confidence"), "prob_up": d.get("prob_up"),
            "asset": d.get("asset"), "price": d.get("price"), "seq": d.get("seq"), "stale": d.get("stale"),
            "age_s": round(now - ts, 1) if ts is not None else None}


def _journal_problems(journal: Any) -> dict | None:
    """executor.json's `journal` ({bad_lines, first_bad, blocked_assets}) when it reports a problem."""
    if not isinstance(journal, dict):
        return None
    bad = journal.get("bad_lines")
    bad = bad if isinstance(bad, int) and not isinstance(bad, bool) and bad > 0 else 0
    blocked = journal.get("blocked_assets")
    if isinstance(blocked, list):
        blocked = {str(a): None for a in blocked}
    blocked = {str(k): v for k, v in blocked.items()} if isinstance(blocked, dict) else {}
    if not bad and not blocked:
        return None
    first = journal.get("first_bad")
    return {"bad_lines": bad, "first_bad": first if isinstance(first, list) else [], "blocked_assets": blocked}


def _executor(cfg: Config) -> dict | None:
    res = read_json(cfg.executor_state_path)
    if not res.ok or not res.data:
        return None
    d = res.data
    out = {k: d.get(k) for k in ("status", "reason", "last_window", "last_trade", "updated", "counters")
           if d.get(k) is not None}
    problems = _journal_problems(d.get("journal"))
    if problems:
        out["journal"] = problems
    return out


def _first_bad_text(item: Any) -> str:
    """One of executor.json's first bad journal lines, short: 'line 12 (missing asset)'."""
    if isinstance(item, dict):
        where = item.get("line", item.get("lineno"))
        why = item.get("problem", item.get("reason", item.get("why")))
        path = item.get("path", item.get("file"))
        bits = [f"line {where}" if where is not None else None, f"of {Path(str(path)).name}" if path else None,
                f"({why})" if why else None]
        text = " ".join(b for b in bits if b) or json.dumps(item, default=str)
    else:
        text = str(item)
    return text if len(text) <= 100 else text[:97] + "..."


def _trades(cfg: Config, now: float) -> dict:
    recs = _tail_records(cfg.trades_path)
    today = utc_day(now)
    last = recs[-1] if recs else None
    filled = wins = losses = 0
    pnl = 0.0
    for r in recs:
        ts = _ts(r.get("ts"))
        if ts is None or utc_day(ts) != today:
            continue
        if r.get("event") == "filled":
            filled += 1
        elif r.get("event") == "settled":
            p = r.get("pnl")
            if isinstance(p, (int, float)):
                pnl += float(p)
                if p > 0:
                    wins += 1
                elif p < 0:
                    losses += 1
    return {"last": last, "today": {"filled": filled, "wins": wins, "losses": losses, "pnl": round(pnl, 4)},
            "open": _open_positions(recs, cfg, now), "path": str(cfg.trades_path)}


def _open_positions(recs: list[dict], cfg: Config, now: float) -> list[dict]:
    """This mode's fills without a `settled` line yet: the window still running, or the window over
    and the trade awaiting the market's resolution (the executor settles it once published)."""
    held: dict[str, dict] = {}
    slugs: dict[str, str] = {}
    for r in recs:
        tid, event = r.get("trade_id"), r.get("event")
        if not tid or r.get("mode", cfg.mode) != cfg.mode:
            continue
        if r.get("slug"):
            slugs[str(tid)] = r["slug"]
        if event == "filled":
            held[str(tid)] = r
        elif event == "settled":
            held.pop(str(tid), None)
    out = []
    for tid, r in held.items():
        start = r.get("window_start")
        end = start + cfg.window_seconds if isinstance(start, int) and not isinstance(start, bool) else None
        over = end is not None and now >= end
        out.append({"trade_id": tid, "asset": r.get("asset"), "slug": slugs.get(tid), "side": r.get("side"),
                    "amount": r.get("amount"), "window_start": start,
                    "state": "awaiting resolution" if over else "window running",
                    "ended_s_ago": round(now - end, 1) if over else None})
    return out


def _risk(cfg: Config, now: float) -> dict | None:
    res = read_json(risk_state_path(cfg))
    if not res.ok or not res.data:
        return None if res.problem == "missing" else {"problem": res.problem}
    d = res.data
    keep = ("day", "trades_today", "wins", "losses", "pnl_today", "consecutive_losses", "halted",
            "halt_reason", "halt_kind", "halted_at")
    out = {k: d.get(k) for k in keep if k in d}
    today = utc_day(now)
    if out.get("day") and out["day"] != today:
        # risk.json rolls its day over only when the executor next touches it: after midnight
        # UTC, yesterday's counters are not today's. Halts and the losing streak carry over.
        out.update(day=today, trades_today=0, wins=0, losses=0, pnl_today=0.0)
    return out


def build(cfg: Config, paths: Paths, specs: list[ChildSpec], now: float | None = None) -> dict:
    now = time.time() if now is None else now
    res = read_json(paths.status_file)
    doc = res.data if res.ok else None
    mon, _problem = pidfiles.read(paths.pid_file("monitor"))
    monitor_alive = mon is not None and mon.ident.alive()
    if monitor_alive:
        monitor = {"state": "running", "pid": mon.ident.pid, "uptime_s": round(now - mon.started_at, 1)}
    elif mon is not None or (doc and doc.get("monitor", {}).get("state") == "running"):
        monitor = {"state": "gone", "pid": None,
                   "note": "the monitor is not running: nothing restarts the processes; ./supervisor.sh restart"}
    else:
        monitor = {"state": "stopped", "pid": None}
    procs = _processes(paths, specs, doc, monitor_alive, now)
    ok = monitor_alive and bool(procs) and all(p["state"] == ChildState.RUNNING.value for p in procs.values())
    ran = doc if doc and (monitor_alive or doc.get("monitor", {}).get("state") != "running") else {}
    return {"ok": ok, "mode": ran.get("mode", cfg.mode), "market_url": ran.get("market_url", cfg.market_url),
            "monitor": monitor, "processes": procs,
            "signal": _signal(cfg, now),
            "signals": {a: _signal(cfg, now, cfg.signal_path_for(a)) for a in cfg.assets},
            "executor": _executor(cfg), "trades": _trades(cfg, now),
            "risk": _risk(cfg, now), "pause": read_pause(cfg.state_dir).as_dict(), "at": now}


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render(st: dict) -> str:
    lines = [f"mode {st['mode']}   market {st['market_url']}"]
    m = st["monitor"]
    if m["state"] == "running":
        lines.append(f"{'monitor':<14} running   pid {m['pid']:<7} up {_dur(m.get('uptime_s'))}")
    elif m["state"] == "gone":
        lines.append(f"{'monitor':<14} GONE      {m['note']}")
    else:
        lines.append(f"{'monitor':<14} stopped   (./supervisor.sh start)")
    if st.get("service"):
        lines.append(f"{'service':<14} {st['service']['text']}")
    for name, p in st["processes"].items():
        extra = []
        if p.get("pid"):
            extra.append(f"pid {p['pid']:<7} up {_dur(p.get('uptime_s'))}")
        asked = p.get("requested_restarts") or 0
        extra.append(f"restarts {p.get('restarts', 0)}" + (f" (+{asked} by you with up)" if asked else ""))
        if p.get("heartbeat_age_s") is not None:
            extra.append(f"heartbeat {p['heartbeat_age_s']:.1f}s ago")
        if p.get("restart_in_s") is not None:
            extra.append(f"next start in {p['restart_in_s']:.0f}s (failed starts {p.get('failed_starts', 0)})")
        if p.get("fatal_reason"):
            extra.append(("" if p["state"] == ChildState.FATAL.value else "was FATAL: ") + p["fatal_reason"])
        if p.get("retry_in_s") is not None:
            extra.append(f"next automatic retry in {_dur(p['retry_in_s'])} (or ./supervisor.sh up {name})")
        if p.get("held_down"):
            ago = p.get("down_for_s")
            extra.append(f"held down by {p['held_down']}" + (f", stopped by you {_dur(ago)} ago" if ago is not None
                                                             else ""))
        lines.append(f"{name:<14} {p['state']:<9} " + "  ".join(extra))
    for asset, sig in (st.get("signals") or {"": st.get("signal")}).items():
        sig = sig or {}
        label = "signal" if len(st.get("signals") or {}) <= 1 else f"signal {asset}"
        if sig.get("problem"):
            lines.append(f"{label:<14} none ({sig['problem']}: {sig.get('path')})")
            continue
        prob = sig.get("prob_up")
        # prob_up first: what the default strategy (edge) trades on; the seed's heuristic after it
        lines.append(f"{label:<14} prob_up {prob if prob is None else f'{prob:.3f}'}  (heuristic {sig.get('direction')}"
                     f" {sig.get('confidence')})  age {sig.get('age_s')}s"
                     f"{'  STALE' if sig.get('stale') else ''}  ({sig.get('asset')}, seq {sig.get('seq')})")
    ex = st.get("executor")
    if ex:
        lw = ex.get("last_window") or {}
        lines.append(f"{'executor':<14} {ex.get('status')}{' (' + str(ex['reason']) + ')' if ex.get('reason') else ''}"
                     f"  last window {lw.get('slug', '-')} {lw.get('action', '')}"
                     f"{' (' + str(lw['outcome']) + ')' if lw.get('outcome') else ''}".rstrip())
        jp = ex.get("journal")
        if jp:
            bits = []
            if jp["bad_lines"]:
                first = ", ".join(_first_bad_text(b) for b in jp["first_bad"][:3])
                bits.append(f"{jp['bad_lines']} unreadable journal line(s) skipped" + (f": {first}" if first else ""))
            if jp["blocked_assets"]:
                blocked = ", ".join(f"{a} ({_first_bad_text(why)})" if why else a
                                    for a, why in jp["blocked_assets"].items())
                bits.append(f"no new orders for {blocked} until reconciled")
            lines.append(f"{'journal':<14} " + "; ".join(bits))
    tr = st["trades"]
    last = tr.get("last")
    if last:
        bits = [str(last.get(k)) for k in ("ts", "event", "asset", "side", "amount", "price", "outcome", "pnl")
                if last.get(k) is not None]
        lines.append(f"{'last trade':<14} " + " ".join(bits))
    else:
        lines.append(f"{'last trade':<14} none yet ({tr['path']})")
    held = tr.get("open") or []
    if held:
        shown = "; ".join(f"{p.get('asset')} {p.get('side')} ${float(p.get('amount') or 0):.2f} {p.get('slug') or '-'}"
                          f" {p['state']}" + (f" (ended {_dur(p['ended_s_ago'])} ago)" if p.get("ended_s_ago") else "")
                          for p in held[:5])
        lines.append(f"{'open':<14} {len(held)} position(s): {shown}" + (" ..." if len(held) > 5 else ""))
    risk = st.get("risk")
    today = tr["today"]
    if risk and "pnl_today" in risk:
        lines.append(f"{'today':<14} {risk.get('trades_today', 0)} trades, {risk.get('wins', 0)} won, "
                     f"{risk.get('losses', 0)} lost, P&L {risk.get('pnl_today', 0):+.2f}")
    else:
        lines.append(f"{'today':<14} {today['filled']} filled, {today['wins']} won, {today['losses']} lost, "
                     f"P&L {today['pnl']:+.2f}")
    if risk:
        if risk.get("problem"):
            lines.append(f"{'risk':<14} risk.json unreadable ({risk['problem']})")
        elif risk.get("halted"):
            lines.append(f"{'risk':<14} HALTED ({risk.get('halt_kind')}): {risk.get('halt_reason')}"
                         "  -> ./supervisor.sh resume")
        else:
            lines.append(f"{'risk':<14} ok (losing streak {risk.get('consecutive_losses', 0)})")
    pause = st.get("pause") or {}
    if pause.get("paused"):
        lines.append(f"{'pause':<14} PAUSED: {pause.get('reason')}")
    if not st["ok"]:
        lines.append("status: not everything is running (exit 3)")
    return "\n".join(lines)


def _service(cfg: Config) -> dict:
    """How it runs after reboots (./supervisor.sh install): monitor/service.py; never fails status."""
    from .service import ServiceError, describe, installed, live_confirmed

    try:
        info = installed()
        live = info is not None and live_confirmed(cfg.state_dir)[0]
    except (OSError, ServiceError) as exc:
        return {"kind": "unknown", "text": f"could not be checked ({exc})"}
    return {**(info or {"kind": None}), "live": live,
            "text": describe(info) + ("; live (confirmed at install time)" if live else "")}


def main_status(cfg: Config, paths: Paths, specs: list[ChildSpec], as_json: bool) -> ExitStatus:
    st = build(cfg, paths, specs)
    st["service"] = _service(cfg)
    if as_json:
        print(json.dumps(st, indent=2, default=str))
    else:
        print(render(st))
    return ExitStatus.OK if st["ok"] else ExitStatus.NOT_ALL_UP


__all__ = ["build", "main_status", "render"]
