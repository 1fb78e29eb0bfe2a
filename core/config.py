"""Configuration: `.env` (python-dotenv), then the environment, converted and validated.

Every process calls `load_config()` (or `config_or_exit()` from its `main`) once and gets a
frozen `Config`. An invalid value raises `ConfigError` naming the variable, the problem and
an example of a good value; `config_or_exit` turns that into one line on stderr and exit 2.
Secrets (`METAMASK_PASSWORD`, webhook URLs) are never part of an error message or a repr, and
no message echoes more than `SHOWN_CHARS` characters of a value.

The supervisor's knobs (`SUPERVISOR_*`) are part of the same config: a value in `.env` applies
as much as one in the environment, and a bad one refuses to start with one line (exit 2).

Secrets reach supervised processes through a file, not their environment: the monitor writes
`<STATE_DIR>/secrets.json` (mode 0600, atomically; removed when it stops) and sets
`SECRETS_FILE=<path>` in each child's environment instead of the secret variables. `load_config`
reads the secret variables (SECRET_VARS only) from `SECRETS_FILE` when it is set: over `.env`,
under the environment. A file that is missing, not a JSON object, or readable by others refuses
(exit 2, naming SECRETS_FILE).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from core import guard_caps
from core.config_checks import check_files as _check_files
from core.config_checks import read_secrets_file
from core.config_control import TELEGRAM_API_URL, control_settings
from core.config_values import (  # noqa: F401 - re-exported: core.config is the one import for callers
    DEMO_ASSETS,
    KNOWN_FEEDS,
    REPO_ROOT,
    RESERVED_PROFILE_NAMES,
    SECRET_VARS,
    SECRETS_FILE_VAR,
    SHOWN_CHARS,
    ConfigError,
    Secret,
    _assets,
    _Bad,
    _bool,
    _choice,
    _feeds,
    _float,
    _int,
    _path,
    _profile_name,
    _secret_url,
    _url,
    _url_problem,
    _writable_dir,
    shown,
)
from core.exit_codes import ExitStatus

EXIT_CONFIG = ExitStatus.REFUSED
MODES = ("demo", "paper", "live")
STRATEGIES = ("seed", "edge")
SIZINGS = ("fixed", "kelly")
LIVE_CONFIRM_PHRASE = "I_UNDERSTAND"
POLYMARKET_URL = "https://polymarket.com/crypto/15M"
GAMMA_URL = "https://gamma-api.polymarket.com"   # public read-only market data (docs.polymarket.com)
CLOB_URL = "https://clob.polymarket.com"
# The demo wallet's password when METAMASK_PASSWORD is unset (MODE=demo only): the replica's wallet
# unlocks with it and the executor types it, so a standalone demo works on both sides. Not a secret.
DEMO_WALLET_PASSWORD = "demo-password"
STALE_PREFIX = "SUPERVISOR_STALE_"  # SUPERVISOR_STALE_<NAME>: the heartbeat limit of one child
DEFAULT_PROB_MODEL_FILE = REPO_ROOT / "signal_engine" / "params" / "prob_up-v2.json"
PRICE_STREAMS = ("binance", "off")
BINANCE_WS_URL = "wss://stream.binance.com:9443"            # Binance spot WebSocket streams (public)
CHAINLINK_WS_URL = "wss://ws-live-data.polymarket.com"     # Polymarket RTDS, topic crypto_prices_chainlink

@dataclass(frozen=True)
class Config:
    mode: str
    position_size: float
    confidence: float
    chrome_profile: str
    metamask_password: Secret = field(repr=False)
    market_url: str
    assets: tuple[str, ...]
    window_seconds: int
    signal_interval: float
    state_dir: Path
    log_dir: Path
    profile_dir: Path
    browser_path: str | None
    headless: bool
    live_confirmed: bool
    # signal engine
    feeds: tuple[str, ...]
    binance_url: str
    coinbase_url: str
    feed_timeout: float
    replay_file: Path | None
    replay_speed: float
    sim_seed: int
    stale_after: float
    # executor
    strategy: str
    min_edge: float
    entry_start: float
    entry_end: float
    signal_max_age: float
    min_price: float
    max_price: float
    site_profile: str
    wallet_profile: str
    amount_tolerance: float
    max_slippage: float
    fee_rate: float
    fee_exponent: float
    step_timeout: float
    # risk
    sizing: str
    kelly_fraction: float
    max_position_size: float
    max_daily_loss: float
    max_consecutive_losses: int
    max_trades_per_day: int
    max_open_exposure: float
    cooldown_seconds: float
    resume_next_day: bool
    # notifications
    discord_webhook_url: Secret = field(repr=False)
    discord_mention: str
    summary_interval: float
    # replica (demo venue)
    replica_port: int
    replica_wallet_port: int
    # risk: the USD bankroll fractional Kelly sizes against (SIZING=kelly only)
    bankroll: float = 400.0
    # supervisor (monitor/): SUPERVISOR_* knobs, in seconds unless said
    supervisor_backoff_base: float = 1.0
    supervisor_backoff_max: float = 60.0
    supervisor_min_uptime: float = 5.0
    supervisor_max_fails: int = 5
    supervisor_stop_timeout: float = 15.0
    supervisor_tick: float = 0.2
    supervisor_log_max_bytes: int = 10 * 1024 * 1024
    # market data (executor): Polymarket's Gamma and CLOB APIs; the replica serves both in demo
    gamma_url: str = GAMMA_URL
    clob_url: str = CLOB_URL
    market_data_timeout: float = 5.0
    # settlement: wait this long after a window's end for the market's own resolution, then settle
    # from the feed's prices and mark the settlement estimated
    resolution_wait: float = 3600.0
    # restart the browser between windows after this many windows (0: never); see executor/worker.py
    browser_recycle_windows: int = 96
    # wallet guard: the user's Polymarket trading address (the Safe or deposit wallet that is the orders'
    # maker); "" = pin the first confirmed order's address in STATE_DIR/wallet.json
    wallet_address: str = ""
    # quote recorder (executor/quote_recorder.py): logs/quotes/quotes-YYYY-MM-DD.jsonl, once a second;
    # QUOTES defaults on in paper/live, off in demo; at most quotes_keep_days day files are kept
    quotes: bool = False
    quotes_keep_days: int = 14
    supervisor_log_keep: int = 3
    supervisor_start_timeout: float = 40.0
    supervisor_fatal_retry: float = 300.0  # a FATAL child (not one that exited 2) is retried this often; 0: never
    supervisor_children_file: Path | None = None
    # (child name in lower case, heartbeat limit) for each SUPERVISOR_STALE_<NAME> set
    supervisor_stale: tuple[tuple[str, float], ...] = ()
    # control surfaces (core/config_control.py): the loopback dashboard + /metrics, the Telegram bot
    dashboard: bool = True
    dashboard_port: int = 8787
    dashboard_bind: str = "127.0.0.1"
    telegram_bot_token: Secret = field(default=Secret(""), repr=False)
    telegram_chat_ids: tuple[int, ...] = ()
    telegram_api_url: str = TELEGRAM_API_URL
    # prob_up v2 (issue 14): the parameter file `python -m backtest fit` writes; None: today's model (v1)
    prob_model_file: Path | None = DEFAULT_PROB_MODEL_FILE
    # executor: from this many seconds into a window on, trade only against the venue's price to beat; None: never
    strike_required_after: float | None = None
    # streaming prices (signal engine): PRICE_STREAM=binance puts a WebSocket trade stream first in the feed chain
    price_stream: str = "off"
    binance_ws_url: str = BINANCE_WS_URL
    # Chainlink reference prices: Polymarket's real-time data stream ("" = off: exchange price + basis)
    chainlink_ws_url: str = ""

    @property
    def telegram_enabled(self) -> bool:
        """The bot runs (a supervised child) only when both its token and its chats are set."""
        return bool(self.telegram_bot_token) and bool(self.telegram_chat_ids)

    def stale_after_for(self, name: str, default: float) -> float:
        """SUPERVISOR_STALE_<NAME> when set, else `default`: the heartbeat limit of one child."""
        return dict(self.supervisor_stale).get(name.lower(), default)

    # ---- derived paths -------------------------------------------------------------
    @property
    def signal_path(self) -> Path:
        return self.state_dir / "signal.json"

    def signal_path_for(self, asset: str) -> Path:
        """The first asset writes signal.json; each further one signal-<asset>.json."""
        asset = asset.upper()
        if not self.assets or asset == self.assets[0]:
            return self.signal_path
        return self.state_dir / f"signal-{asset.lower()}.json"

    @property
    def executor_state_path(self) -> Path:
        return self.state_dir / "executor.json"

    def heartbeat_path(self, name: str) -> Path:
        return self.state_dir / "heartbeat" / name

    @property
    def trades_path(self) -> Path:
        return self.log_dir / "trades.jsonl"

    @property
    def decisions_path(self) -> Path:
        return self.log_dir / "decisions.jsonl"

    @property
    def signals_log_path(self) -> Path:
        return self.log_dir / "signals.jsonl"

    @property
    def screenshot_dir(self) -> Path:
        return self.log_dir / "screenshots"

    @property
    def browser_profile_path(self) -> Path:
        return self.profile_dir / self.chrome_profile

    @property
    def site_profile_path(self) -> Path:
        return REPO_ROOT / "profiles" / "sites" / f"{self.site_profile}.json"

    @property
    def wallet_profile_path(self) -> Path:
        return REPO_ROOT / "profiles" / "wallets" / f"{self.wallet_profile}.json"

    def public_dict(self) -> dict:
        """Every setting with secrets masked: safe for logs and `status`."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = "***" if value else ""
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# ---- loading ----------------------------------------------------------------------


def secrets_of(cfg: Config) -> dict[str, str]:
    """The secret values a supervised child needs (what the monitor writes to SECRETS_FILE)."""
    out = {"METAMASK_PASSWORD": str(cfg.metamask_password),
           "CLOBBOT_DISCORD_WEBHOOK_URL": str(cfg.discord_webhook_url),
           "TELEGRAM_BOT_TOKEN": str(cfg.telegram_bot_token)}
    return {k: v for k, v in out.items() if v}


def _merged_env(env: Mapping[str, str] | None, dotenv_path: Path | None) -> dict[str, str]:
    """`.env` first, then the secrets in SECRETS_FILE if set, the environment on top (the environment wins)."""
    base = os.environ if env is None else env
    if dotenv_path is None:
        dotenv_path = Path(base.get("DOTENV_PATH", REPO_ROOT / ".env"))
    merged: dict[str, str] = {}
    if dotenv_path.is_file():
        try:
            values = dotenv_values(dotenv_path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("DOTENV_PATH", f"could not be read ({dotenv_path}: {exc})",
                              ".env") from None
        merged.update({k: v for k, v in values.items() if v is not None})
    secrets_file = (base.get(SECRETS_FILE_VAR) or "").strip()
    if secrets_file:
        merged.update(read_secrets_file(Path(secrets_file)))
    merged.update(base)
    return merged


def _wallet_address(text: str) -> str:
    """WALLET_ADDRESS: empty, or a 0x address of 40 hex digits (kept in lower case)."""
    t = text.strip()
    if not t:
        return ""
    if len(t) != 42 or not t.startswith("0x") or any(c not in "0123456789abcdefABCDEF" for c in t[2:]):
        raise _Bad(f"must be your Polymarket account's 0x address (42 characters), got {shown(t)}",
                   "0x1111111111111111111111111111111111111111")
    return t.lower()


def min_edge_default_slippage(e: Mapping[str, str]) -> float:
    """MAX_SLIPPAGE defaults to MIN_EDGE: never pay away more than the edge required to trade."""
    try:
        value = float(e.get("MIN_EDGE", "").strip() or "0.03")
    except ValueError:
        return 0.03  # MIN_EDGE itself is validated (exit 2) by load_config
    return min(max(value, 0.0), 0.98) if math.isfinite(value) else 0.03


def _supervisor_settings(e: Mapping[str, str], get: Callable) -> dict:
    """The SUPERVISOR_* knobs (monitor/settings.py turns them into its Knobs and child limits)."""
    base = get("SUPERVISOR_BACKOFF_BASE", "1", _float(0.01, 3600, False, "1"))
    backoff_max = get("SUPERVISOR_BACKOFF_MAX", str(max(60.0, base)), _float(0.01, 86400, False, "60"))
    if backoff_max < base:
        raise ConfigError("SUPERVISOR_BACKOFF_MAX", f"must be >= SUPERVISOR_BACKOFF_BASE ({base:g})", "60")
    stale = []
    for var in sorted(k for k in e if k.startswith(STALE_PREFIX)):
        name = var[len(STALE_PREFIX):].lower()
        if not name or not (e.get(var) or "").strip():
            continue
        stale.append((name, get(var, "30", _float(0.5, 86400, False, "30"))))
    children_raw = (e.get("SUPERVISOR_CHILDREN_FILE") or "").strip()
    return {
        "supervisor_backoff_base": base,
        "supervisor_backoff_max": backoff_max,
        "supervisor_min_uptime": get("SUPERVISOR_MIN_UPTIME", "5", _float(0, 3600, False, "5")),
        "supervisor_max_fails": get("SUPERVISOR_MAX_FAILS", "5", _int(1, 1000, "5")),
        "supervisor_stop_timeout": get("SUPERVISOR_STOP_TIMEOUT", "15", _float(0.1, 3600, False, "15")),
        "supervisor_tick": get("SUPERVISOR_TICK", "0.2", _float(0.01, 5, False, "0.2")),
        "supervisor_log_max_bytes": get("SUPERVISOR_LOG_MAX_BYTES", str(10 * 1024 * 1024),
                                        _int(1024, None, "10485760")),
        "supervisor_log_keep": get("SUPERVISOR_LOG_KEEP", "3", _int(1, 100, "3")),
        "supervisor_start_timeout": get("SUPERVISOR_START_TIMEOUT", "40", _float(1, 3600, False, "40")),
        "supervisor_fatal_retry": get("SUPERVISOR_FATAL_RETRY", "300", _float(0, 7 * 86400, False, "300")),
        "supervisor_children_file": _path(children_raw) if children_raw else None,
        "supervisor_stale": tuple(stale),
    }


def _off_or(conv: Callable[[str], object]) -> Callable[[str], object]:
    """`off` (or `none`) -> None, anything else through conv."""
    def wrapped(text: str):
        return None if text.strip().lower() in ("off", "none") else conv(text)
    return wrapped


def _ws_url(text: str) -> str:
    t = text.strip()
    if t.lower() in ("off", "none"):
        return ""
    try:
        parts = urlsplit(t)
        _ = parts.port
    except ValueError:
        raise _Bad(f"does not parse as a URL (got {shown(text)})", "wss://ws-live-data.polymarket.com") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or any(ch.isspace() for ch in t):
        raise _Bad(f"must be a ws(s):// URL with a host, or off (got {shown(text)})", "wss://ws-live-data.polymarket.com")
    return t.rstrip("/")


def _signal_model_settings(get: Callable, demo: bool) -> dict:
    """Issue 14's knobs: the prob_up parameter file, the strike rule, the price streams."""
    return {
        "prob_model_file": get("PROB_MODEL_FILE", str(DEFAULT_PROB_MODEL_FILE), _off_or(_path)),
        "strike_required_after": get("STRIKE_REQUIRED_AFTER", "off" if demo else "300",
                                     _off_or(_float(0, None, False, "300"))),
        "price_stream": get("PRICE_STREAM", "off" if demo else "binance", _choice(PRICE_STREAMS)),
        "binance_ws_url": get("BINANCE_WS_URL", BINANCE_WS_URL, _ws_url) or BINANCE_WS_URL,
        "chainlink_ws_url": get("CHAINLINK_WS_URL", "off" if demo else CHAINLINK_WS_URL, _ws_url),
    }


def load_config(env: Mapping[str, str] | None = None, dotenv_path: Path | None = None,
                check_dirs: bool = True) -> Config:
    """Build the validated, frozen Config. Raises ConfigError on the first invalid value."""
    e = _merged_env(env, dotenv_path)

    def get(var: str, default: str, conv: Callable[[str], object]):
        raw = e.get(var)
        text = default if raw is None or raw.strip() == "" else raw
        try:
            return conv(text)
        except _Bad as bad:
            raise ConfigError(var, bad.problem, bad.example) from None

    mode = get("MODE", "demo", _choice(MODES))
    demo = mode == "demo"
    live_confirmed = e.get("LIVE_CONFIRM", "") == LIVE_CONFIRM_PHRASE
    if mode == "live" and not live_confirmed:
        # The example offered is the safe value: confirming live is a decision, not a fix to paste.
        raise ConfigError("MODE", "is live, which trades real money and needs an explicit confirmation:"
                          " run ./supervisor.sh start --live and answer the prompt", "demo")

    replica_port = get("REPLICA_PORT", "8765", _int(1024, 65535, "8765"))
    replica_wallet_port = get("REPLICA_WALLET_PORT", str(replica_port + 1), _int(1024, 65535, "8766"))
    if replica_wallet_port == replica_port:
        raise ConfigError("REPLICA_WALLET_PORT", f"must differ from REPLICA_PORT ({replica_port})",
                          str(replica_port + 1))
    demo_api = f"http://127.0.0.1:{replica_port}"
    default_url = f"{demo_api}/crypto/15M" if demo else POLYMARKET_URL

    window_seconds = get("WINDOW_SECONDS", "60" if demo else "900", _int(10, 3600, "60"))
    if not demo and window_seconds != 900:
        raise ConfigError("WINDOW_SECONDS", f"can only be changed in demo mode (MODE={mode}"
                          f" trades the real 900 s windows, got {window_seconds})", "900")

    position_size = get("POSITION_SIZE", "10.0", _float(0, None, True, "10.0"))
    max_position_size = get("MAX_POSITION_SIZE", str(max(25.0, position_size)),
                            _float(0, None, True, "25.0"))
    if max_position_size < position_size:
        raise ConfigError("POSITION_SIZE", f"({position_size:g}) is above MAX_POSITION_SIZE ({max_position_size:g}),"
                          " the cap on any one order: lower POSITION_SIZE, or raise MAX_POSITION_SIZE on purpose",
                          f"{max_position_size:g}")

    min_price = get("MIN_PRICE", "0.05", _float(0.01, 0.99, False, "0.05"))
    max_price = get("MAX_PRICE", "0.95", _float(0.01, 0.99, False, "0.95"))
    if max_price < min_price:
        raise ConfigError("MAX_PRICE", f"must be >= MIN_PRICE ({min_price:g})", "0.95")

    entry_start = get("ENTRY_START", "0", _float(0, None, False, "0"))
    entry_end = get("ENTRY_END", str(window_seconds * 0.8), _float(0, None, False, "600"))
    if entry_end <= entry_start or entry_end > window_seconds:
        raise ConfigError("ENTRY_END", f"must be after ENTRY_START ({entry_start:g}) and within"
                          f" the window ({window_seconds} s)", f"{window_seconds * 0.8:g}")

    signal_interval = get("SIGNAL_INTERVAL", "1", _float(0.001, 60, False, "1"))  # 0.001: stress tests
    replay_raw = e.get("REPLAY_FILE", "").strip()

    cfg = Config(
        mode=mode,
        position_size=position_size,
        confidence=get("CONFIDENCE", "60", _float(50, 100, False, "60")),
        chrome_profile=get("CHROME_PROFILE", "demo" if demo else "live", _profile_name),
        metamask_password=Secret(e.get("METAMASK_PASSWORD", "") or (DEMO_WALLET_PASSWORD if demo else "")),
        market_url=get("MARKET_URL", default_url, _url(default_url)),
        assets=get("ASSETS", "BTC", _assets),
        window_seconds=window_seconds,
        signal_interval=signal_interval,
        state_dir=get("STATE_DIR", "state", _path),
        log_dir=get("LOG_DIR", "logs", _path),
        profile_dir=get("PROFILE_DIR", "profiles", _path),
        browser_path=(e.get("BROWSER_PATH", "").strip() or None),
        headless=get("HEADLESS", "1" if demo else "0", _bool("1")),
        live_confirmed=live_confirmed,
        feeds=get("FEEDS", "sim" if demo else "binance,coinbase", _feeds),
        binance_url=get("BINANCE_URL", "https://api.binance.com", _url("https://api.binance.com")),
        coinbase_url=get("COINBASE_URL", "https://api.exchange.coinbase.com",
                         _url("https://api.exchange.coinbase.com")),
        feed_timeout=get("FEED_TIMEOUT", "2", _float(0.1, 30, False, "2")),
        replay_file=_path(replay_raw) if replay_raw else None,
        replay_speed=get("REPLAY_SPEED", "1", _float(0, None, True, "60")),
        sim_seed=get("SIM_SEED", "7", _int(0, None, "7")),
        stale_after=get("STALE_AFTER", str(max(5.0, 5 * signal_interval)),
                        _float(0, None, True, "5")),
        strategy=get("STRATEGY", "edge", _choice(STRATEGIES)),
        min_edge=get("MIN_EDGE", "0.03", _float(-1, 1, False, "0.03")),
        entry_start=entry_start,
        entry_end=entry_end,
        signal_max_age=get("SIGNAL_MAX_AGE", str(max(5.0, 5 * signal_interval)),
                           _float(0, None, True, "5")),
        min_price=min_price,
        max_price=max_price,
        site_profile=get("SITE_PROFILE", "polymarket", _profile_name),
        wallet_profile=get("WALLET_PROFILE", "metamask", _profile_name),
        amount_tolerance=get("AMOUNT_TOLERANCE", "0.02", _float(0, 0.5, False, "0.02")),
        max_slippage=get("MAX_SLIPPAGE", "", _float(0, 0.98, False, "0.03")) if e.get("MAX_SLIPPAGE", "").strip()
        else min_edge_default_slippage(e),
        fee_rate=get("FEE_RATE", "0.07", _float(0, 1, False, "0.07")),
        fee_exponent=get("FEE_EXPONENT", "1", _float(0, 5, False, "1")),
        step_timeout=get("STEP_TIMEOUT", "10", _float(0.5, 120, False, "10")),
        sizing=get("SIZING", "fixed", _choice(SIZINGS)),
        kelly_fraction=get("KELLY_FRACTION", "0.25", _float(0, 1, True, "0.25")),
        max_position_size=max_position_size,
        max_daily_loss=get("MAX_DAILY_LOSS", "50", _float(0, None, True, "50")),
        max_consecutive_losses=get("MAX_CONSECUTIVE_LOSSES", "5", _int(1, None, "5")),
        max_trades_per_day=get("MAX_TRADES_PER_DAY", "100" if demo else "40", _int(1, None, "40")),
        max_open_exposure=get("MAX_OPEN_EXPOSURE", str(max(50.0, 4 * position_size)),
                              _float(0, None, True, "50")),
        cooldown_seconds=get("COOLDOWN_SECONDS", "0" if demo else "120", _float(0, None, False, "120")),
        resume_next_day=get("RESUME_NEXT_DAY", "0", _bool("0")),
        discord_webhook_url=get("CLOBBOT_DISCORD_WEBHOOK_URL", "", _secret_url),
        discord_mention=e.get("CLOBBOT_DISCORD_MENTION", "").strip(),
        summary_interval=get("SUMMARY_INTERVAL", "3600", _float(0, None, False, "3600")),
        replica_port=replica_port,
        replica_wallet_port=replica_wallet_port,
        bankroll=get("BANKROLL", str(40 * position_size), _float(0, None, True, "400")),
        gamma_url=get("GAMMA_URL", demo_api + "/gamma" if demo else GAMMA_URL, _url(GAMMA_URL)),
        clob_url=get("CLOB_URL", demo_api + "/clob" if demo else CLOB_URL, _url(CLOB_URL)),
        market_data_timeout=get("MARKET_DATA_TIMEOUT", "5", _float(0.1, 60, False, "5")),
        browser_recycle_windows=get("BROWSER_RECYCLE_WINDOWS", "96", _int(0, 100000, "96")),
        resolution_wait=get("RESOLUTION_WAIT", str(max(60.0, 4.0 * window_seconds)) if demo else "3600",
                            _float(0, None, False, "3600")),
        wallet_address=get("WALLET_ADDRESS", "", _wallet_address),
        quotes=get("QUOTES", "0" if demo else "1", _bool("1")),
        quotes_keep_days=get("QUOTES_KEEP_DAYS", "14", _int(1, 3650, "14")),
        **_supervisor_settings(e, get),
        **control_settings(e, get, demo, (replica_port, replica_wallet_port)),
        **_signal_model_settings(get, demo),
    )
    if "replay" in cfg.feeds and cfg.replay_file is None:
        raise ConfigError("REPLAY_FILE", "must name a CSV file when FEEDS includes replay",
                          "../shared/data/btcusdt_1m_dev.csv.gz")
    _check_files(cfg)
    for var, problem, example in guard_caps.problems(cfg, e):
        raise ConfigError(var, problem, example)
    if check_dirs:
        _writable_dir("STATE_DIR", cfg.state_dir)
        _writable_dir("LOG_DIR", cfg.log_dir)
        _writable_dir("PROFILE_DIR", cfg.profile_dir)
    return cfg


def config_or_exit(env: Mapping[str, str] | None = None, stderr=None) -> Config:
    """For a process's main: the config, or one line on stderr and exit code 2."""
    try:
        return load_config(env)
    except ConfigError as exc:
        print(str(exc), file=stderr or sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: list[str] | None = None) -> ExitStatus:
    """`python -m core.config [--json]`: validate and print the config (secrets masked).

    `python -m core.config --raw VAR`: the value of VAR as .env and the environment give it (the
    environment wins), unvalidated, for supervisor.sh's setup; never a secret's."""
    argv = sys.argv[1:] if argv is None else argv
    usage = ("usage: python -m core.config [--json]   check the configuration (.env + the environment) and"
             " print it, secrets masked\n       python -m core.config --raw VAR (not a secret)")
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        return ExitStatus.OK
    if argv[:1] != ["--raw"] and any(a != "--json" for a in argv):
        print(f"core.config: unknown argument {next(a for a in argv if a != '--json')!r}\n{usage}", file=sys.stderr)
        return ExitStatus.REFUSED
    if argv[:1] == ["--raw"]:
        if len(argv) != 2 or argv[1] in SECRET_VARS:
            print("usage: python -m core.config --raw VAR (not a secret)", file=sys.stderr)
            return ExitStatus.REFUSED
        try:
            print(_merged_env(None, None).get(argv[1], "").strip())
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return ExitStatus.REFUSED
        return ExitStatus.OK
    cfg = config_or_exit()
    if "--json" in argv:
        print(json.dumps(cfg.public_dict(), indent=2))
    else:
        for k, v in cfg.public_dict().items():
            print(f"{k}={v}")
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
