"""`python -m chaos --kills N`: the whole demo system under seeded faults, then the audit.

    .venv/bin/python -m chaos --kills 100 --seed 1 --window-seconds 10 --out logs/chaos.json

Starts replica + signal engine + executor through `./supervisor.sh start` in an isolated
temporary STATE_DIR/LOG_DIR with free replica ports (the supervisor's monitor restarts what is
killed), injects the faults described in chaos/run.py, lets the system settle, stops it with
`./supervisor.sh stop`, and compares the replica's orders with trades.jsonl (chaos/audit.py).

Exit codes: 0 all four bad counts are zero; 1 one of them is not (the report names the records);
2 the run could not be made (bad argument, the system did not start or never traded).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from core.config import ConfigError, load_config
from core.durable_files import atomic_write_json, iter_jsonl, read_json
from core.exit_codes import ExitStatus

from .audit import BAD_KEYS, audit, bad_total
from .recorder import Recorder
from .run import Chaos, Plan, executor_counters, open_intents
from .system import CHILDREN, IsolatedSystem, SystemError_
from .system_faults import SYSTEM_BAD_KEYS, SystemFaults

log = logging.getLogger("chaos")
STALE_TOLERANCE_S = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs to deliver (default 100)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault plan (default 1)")
    p.add_argument("--window-seconds", type=int, default=10, help="demo window length (default 10)")
    p.add_argument("--gap-min", type=float, default=2.0, help="min seconds between two steps (default 2)")
    p.add_argument("--gap-max", type=float, default=8.0, help="max seconds between two steps (default 8)")
    p.add_argument("--fault-probability", type=float, default=0.6,
                   help="chance, once per window, of arming the next replica fault when none is armed (default 0.6)")
    p.add_argument("--no-system-faults", action="store_true",
                   help="leave out the system faults (disk full on a small LOG_DIR filesystem, a held risk lock,"
                        " a second executor, malformed journal lines): see chaos/system_faults.py")
    p.add_argument("--system-fault-every", type=int, default=4, help="windows between two system faults (default 4)")
    p.add_argument("--out", type=Path, default=None, help="JSON report (e.g. logs/chaos.json)")
    p.add_argument("--keep", type=Path, default=None, help="run in this directory and keep its state and logs")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop injecting after this long even if fewer kills were made (default: 1 min per kill + 10)")
    a = p.parse_args(argv)
    if a.kills < 1:
        p.error("--kills must be >= 1")
    if not 10 <= a.window_seconds <= 3600:
        p.error("--window-seconds must be 10..3600 (the replica's and the config's limits)")
    if not 0 <= a.gap_min <= a.gap_max:
        p.error("--gap-min must be >= 0 and <= --gap-max")
    if not 0 <= a.fault_probability <= 1:
        p.error("--fault-probability must be 0..1")
    return a


def replica_final(system: IsolatedSystem) -> tuple[list[dict], list[dict]]:
    """Orders and wallet events from the replica's state file (written before every answer and at stop)."""
    res = read_json(system.replica_state_path)
    if not res.ok or not isinstance(res.data, dict):
        return [], []
    return list(res.data.get("orders") or []), list(res.data.get("events") or [])


def print_report(r: dict) -> None:
    a = r["audit"]
    kills = ", ".join(f"{k} {v}" for k, v in sorted(r["kills_by_action"].items()))
    restarts = ", ".join(f"{k} {v}" for k, v in r["restarts"].items())
    fault_kinds: dict[str, int] = {}
    for f in r["faults_armed"]:
        fault_kinds[f["kind"]] = fault_kinds.get(f["kind"], 0) + 1
    lines = [
        f"chaos run: {r['kills']} kills of {r['kills_requested']} (seed {r['seed']}, {r['window_seconds']} s windows,"
        f" {r['duration_s'] / 60:.1f} min)",
        f"  kills by action           {kills}",
        f"  feed outages (SIGSTOP)    {len(r['outages'])}",
        f"  replica faults armed      {len(r['faults_armed'])}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(fault_kinds.items())),
        f"  adversarial requests seen {a['adversarial_requests_seen']}",
        f"  orders placed             {a['orders_placed']}",
        f"  duplicates                {a['duplicates']}"
        f"  (venue {a['duplicates_venue']}, journal {a['duplicates_journal']})",
        f"  lost records              {a['lost_records']}",
        f"  stale-signal trades       {a['stale_trades']}",
        f"  malicious confirmed       {a['malicious_confirmed']}",
        f"  restarts                  {restarts} (browser relaunches {r['browser_relaunches']})",
        f"  longest without executor  {r['longest_without_executor_s']:.1f} s (process);"
        f" {r['longest_without_ready_executor_s']:.1f} s without one watching the page",
        f"  journal                   intents {a['intents']}, filled {a['filled']}, reconciled {a['reconciled']},"
        f" failed {a['failed']}, wallet_rejected {a['wallet_rejected']}, unknown {a['unknown']},"
        f" open at the end {a['open_intents']}",
    ]
    sf = r.get("system_faults")
    if sf:
        kinds: dict[str, int] = {}
        for f in sf["armed"]:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + (0 if f.get("skipped") else 1)
        lines += [
            "  system faults             " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + f" (LOG_DIR: {sf['log_fs']})",
            f"  intents while risk locked {sf['intents_while_risk_locked']}"
            f"  (halts resumed {len(sf['resumed_halts'])})",
            f"  second executor refused   {len(sf['second_executor']) - sf['second_executor_not_refused']}"
            f" of {len(sf['second_executor'])}",
        ]
    bad = [f"{k}={a[k]}" for k in BAD_KEYS if a[k]] + [f"{k}={sf[k]}" for k in SYSTEM_BAD_KEYS if sf and sf[k]]
    lines.append(f"  result                    {'PASS' if r['pass'] else 'FAIL'}" + ("" if r["pass"] else ": "
                                                                                      + ", ".join(bad)))
    print("\n".join(lines), flush=True)
    if not r["pass"]:
        for k in BAD_KEYS:
            for d in a["details"][k]:
                print(f"  {k}: {json.dumps(d)}", flush=True)


def run(a: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory(prefix="chaos-") if a.keep is None else None
    root = Path(tmp.name) if tmp else a.keep
    system = IsolatedSystem(root, window_seconds=a.window_seconds)
    try:
        cfg = load_config(system.env(), check_dirs=False)
    except ConfigError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return ExitStatus.REFUSED
    rec = Recorder(system)
    plan = Plan(a.seed, a.gap_min, a.gap_max)
    sysfaults = None if a.no_system_faults else SystemFaults(system, a.seed, a.system_fault_every)
    chaos = Chaos(system, rec, plan, a.kills, a.fault_probability, sysfaults)
    try:
        return _run(a, system, cfg, rec, chaos, sysfaults, root)
    finally:
        if sysfaults is not None:
            sysfaults.unmount_log_fs()
        if tmp is not None:
            tmp.cleanup()


def _run(a: argparse.Namespace, system: IsolatedSystem, cfg, rec: Recorder, chaos: Chaos,
         sysfaults: SystemFaults | None, root: Path) -> int:
    t0 = time.time()
    settled = False
    status: dict = {}
    counters: dict = {}
    try:
        rec.start()
        if sysfaults is not None:
            sysfaults.mount_log_fs()
        log.info("starting the system in %s (replica port %d)", root, system.port)
        system.start()
        if not system.wait_trading(timeout=max(90.0, 6 * a.window_seconds)):
            print(f"chaos: the system never traded within {max(90.0, 6 * a.window_seconds):.0f} s of start;"
                  f" see the logs in {system.log_dir} (use --keep DIR to keep them)", file=sys.stderr)
            return ExitStatus.REFUSED
        max_s = (a.max_minutes if a.max_minutes is not None else a.kills + 10) * 60
        chaos.run(max_s)
        chaos.wind_down()
        settled = chaos.settle(timeout=max(120.0, 10 * a.window_seconds))
        if not settled:
            log.warning("the system did not settle (open intents: %s)", open_intents(system))
        rec.poll_wallet()
        status = system.status_doc()
        counters = executor_counters(system)
    except SystemError_ as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return ExitStatus.REFUSED
    finally:
        rec.close_gap()
        rec.stop()
        if system.started:
            try:
                system.stop()
            except SystemError_ as exc:
                print(f"chaos: {exc}", file=sys.stderr)
    orders, events = replica_final(system)
    rec.merge_wallet([], events)
    journal = list(iter_jsonl(system.trades_path))
    result = audit(orders, journal, rec.signals, rec.wallet_events.values(), rec.wallet_requests,
                   system.base_url, cfg.signal_max_age, STALE_TOLERANCE_S)
    kids = status.get("children", {})
    sf = sysfaults.verdict() if sysfaults is not None else None
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "command": "python -m chaos " + " ".join(sys.argv[1:]),
        "seed": a.seed, "window_seconds": a.window_seconds, "kills_requested": a.kills, "kills": chaos.done,
        "duration_s": round(time.time() - t0, 1), "settled": settled,
        "kills_by_action": chaos.stats.kills, "kill_log": chaos.stats.kill_log,
        "kill_fallbacks": chaos.stats.fallbacks, "skipped": chaos.stats.skipped,
        "outages": chaos.stats.outages, "faults_armed": chaos.stats.faults_armed,
        "restarts": {n: (kids.get(n) or {}).get("restarts") for n in CHILDREN},
        "fatal": [n for n in CHILDREN if (kids.get(n) or {}).get("state") == "FATAL"],
        "browser_relaunches": counters.get("browser_relaunches"),
        "executor_counters": counters,
        "longest_without_executor_s": round(rec.longest_without_executor, 2),
        "longest_without_ready_executor_s": round(rec.longest_without_ready, 2),
        "signals_recorded": len(rec.signals),
        "signal_max_age": cfg.signal_max_age, "stale_tolerance_s": STALE_TOLERANCE_S,
        "audit": result,
        "system_faults": sf,
        "pass": bad_total(result) == 0 and not (sf and any(sf[k] for k in SYSTEM_BAD_KEYS)),
        "state_dir": str(system.state_dir) if a.keep else None,
    }
    if a.out:
        atomic_write_json(a.out, report)
    print_report(report)
    return ExitStatus.OK if report["pass"] else ExitStatus.ERROR


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return run(a)


if __name__ == "__main__":
    raise SystemExit(main())
