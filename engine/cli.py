"""``engine``: run, check, halt, draw a run's report as a page, and list reject codes.

    engine run CONFIG [--report FILE] [--html FILE] [--speed X] [--seed N] [--log-format human|json]
                      [--journal FILE] [--fresh-account]
    engine record CONFIG --out DIR [--speed X] [--seed N]
    engine journal inspect JOURNAL [--orders N] [--fills N]
    engine journal export JOURNAL --format csv|parquet [--out PATH]
    engine sandbox VENUE [ARGS...] [--run CONFIG [--report FILE] [--html FILE] [--journal FILE]]
    engine check CONFIG
    engine halt CONFIG [--reducing | --clear]
    engine feed CONFIG [--nats URL] [--snapshot-s S] [--heartbeat-s S] [--window-msgs N] [--window-s S]
                [--nats-token-env VAR | --nats-user NAME --nats-password-env VAR | --nats-creds-file FILE ...]
                [--nats-tls-ca-file FILE] [--nats-tls-cert-file FILE --nats-tls-key-file FILE]
    engine report REPORT_JSON [--html FILE]
    engine report DIR [--html FILE]
    engine data import FILE... --kind bars|trades --out DIR [--venue NAME] [--steps N] [--replace]
    engine codes
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine import __version__
from engine.context import strategy_of
from engine.errors import ConfigError, StartupError, StrategyLoadError
from engine.outfile import OutputPathError
from engine.secrets import RedactingFilter, Redactor

log = logging.getLogger("engine")

EPILOG = """\
exit codes: 0 ran (or checked) fine, also after SIGINT/SIGTERM; 1 the config or a strategy is
invalid (the message names the file and line), or a report cannot be read or written (a report
goes only to a regular file or a new path: a FIFO, device or directory is refused at start); 2 bad
command-line arguments; 3 (engine run) orders still working at a venue after shutdown's cancels
ran out of time (run.shutdown_timeout_s): each is logged (ERROR) and listed in the report's
orders.left_working.

examples:
  engine run config.yaml                      one simulated PSX day on the paper venue
  engine run config.yaml --report day.json    ... and write the JSON report
  engine run config.yaml --html day.html      ... and the picture of the day (self-contained HTML)
  engine report day.json --html day.html      draw an existing JSON report as an HTML page
  engine report runs/                         every run's day page and one multi-day summary page
  engine run config.yaml --speed 60           one simulated minute per real second
  engine check config.yaml                    validate config and load strategies, no trading
  engine record config.yaml --out rec         record the venues' market data to Parquet, no trading
  engine halt config.yaml                     kill switch: the running engine cancels all, refuses all
  engine halt config.yaml --reducing          ... or accepts only orders that shrink a position
  engine feed feed.yaml --nats nats://127.0.0.1:4222 --engines e1.yaml e2.yaml
                                              one venue feed on NATS for many engines (market_data: bus);
                                              then engine halt e1.yaml halts every engine on the account
  engine run config.yaml --fresh-account      start a new paper account (the old journal is moved aside)
  engine journal inspect config.journal.sqlite   orders, fills, positions and account from a journal
  engine journal export config.journal.sqlite --format csv   the audit trail (every order event and fill)
  engine data import daily.csv --kind bars --out rec/
                                              PSX daily OHLCV into the recording format (a coarse book)
  engine sandbox psx                          a local PSX venue (Live Feed + Optimus) for config.psx-sandbox.yaml
  engine sandbox psx --run config.psx-sandbox.yaml --speed 60
                                              venue and engine in one process: a PSX day in ~6.5 minutes
  engine sandbox pulse                        a local Pulse venue for config.pulse-sandbox.yaml
  engine sandbox pulse --run config.pulse-sandbox.yaml --speed 60 --duration 30
                                              ... with the engine in one process, every venue the same way
"""


class _EngineTimeFilter(logging.Filter):
    """Stamps records with engine time (simulated time in paper mode), not the machine's."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = None

    def filter(self, record: logging.LogRecord) -> bool:
        clock = self.clock
        record.engine_time = clock.now().strftime("%Y-%m-%d %H:%M:%S") if clock is not None else "-" * 19
        return True


class _StrategyFilter(logging.Filter):
    """Stamps records with the strategy that wrote them (from ``ctx.log``'s logger name), so a
    line says which of several strategies logged it: ``[mm] `` in the human format, a
    ``strategy`` field in JSON. An engine line about one strategy gets the same with
    ``log.info(..., extra={"strategy": name})``."""

    def filter(self, record: logging.LogRecord) -> bool:
        strategy = strategy_of(record.name) or getattr(record, "strategy", None)
        record.strategy = strategy
        record.strategy_tag = f"[{strategy}] " if strategy else ""
        return True


HUMAN_FORMAT = "%(engine_time)s %(levelname)-7s %(strategy_tag)s%(message)s"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": getattr(record, "engine_time", None),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        strategy = getattr(record, "strategy", None)
        if strategy:
            entry["strategy"] = strategy
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and scrubbed of secrets) by RedactingFilter
            entry["traceback"] = record.exc_text
        return json.dumps(entry)


TIME_FILTER = _EngineTimeFilter()


def setup_logging(level: str = "INFO", fmt: str = "human", redactor: Redactor | None = None) -> None:
    """One stderr handler; with ``redactor``, every line and traceback is scrubbed of secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TIME_FILTER)
    handler.addFilter(_StrategyFilter())
    if redactor:
        handler.addFilter(RedactingFilter(redactor))
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # libraries that log every job / request / frame at INFO or DEBUG (a broker poll each second)
    for noisy in ("apscheduler", "httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _speed(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--speed takes a number, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("--speed must be 0 (as fast as possible) or a positive number")
    return value


def _shutdown_timeout(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--shutdown-timeout takes a number of seconds, got {text!r}") from None
    if not value.is_finite() or not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("--shutdown-timeout must be above 0 and at most 3600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engine",
        description="A strategy runtime for the Pakistan Stock Exchange: pluggy strategies, a sandboxed "
        "order context, and venue adapters (the embedded paper venue by default).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the strategies in CONFIG", description="Run the strategies in CONFIG until the last "
        "configured trading day closes, or until SIGINT/SIGTERM. Prints a summary table per strategy at exit.",
        epilog="exit codes: 0 ran fine, also after SIGINT/SIGTERM, every order final; 1 invalid config or "
        "strategy, a taken metrics port, a report that cannot be written; 2 bad arguments; 3 orders still "
        "working at a venue when shutdown's cancels ran out of time (--shutdown-timeout): each is logged "
        "(ERROR) and listed in the report's orders.left_working.",
    )
    run.add_argument("config", type=Path, metavar="CONFIG", help="path to the YAML config (see README)")
    run.add_argument("--report", type=Path, metavar="FILE", help="write the JSON run report to FILE "
                     "(overrides run.report); FILE must be a regular file or a new path (a symlink is "
                     "followed), else the run is refused at start")
    run.add_argument("--html", type=Path, metavar="FILE", help="also write the report as a self-contained HTML "
                     "page to FILE: PnL, positions, prices with fills, rejects, session phases (a regular file "
                     "or a new path, like --report)")
    run.add_argument("--speed", type=_speed, metavar="X", help="simulated clock pace: 0 = as fast as "
                     "possible (default), X = X times real time (overrides run.speed)")
    run.add_argument("--seed", type=int, metavar="N", help="seed for the simulated market (overrides run.seed)")
    run.add_argument("--shutdown-timeout", type=_shutdown_timeout, metavar="S", help="seconds (real time; "
                     "simulated time on the simulated clock) shutdown keeps cancelling, retrying refused cancels "
                     "and querying unanswered ones, until every order is final; then exit 3 naming those still "
                     "working (overrides run.shutdown_timeout_s, default 30). A second SIGINT/SIGTERM meanwhile "
                     "does not abandon them")
    run.add_argument("--log-format", choices=("human", "json"), help="log line format (overrides logging.format)")
    run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level")
    run.add_argument("--journal", type=Path, metavar="FILE", help="the journal file (overrides journal.path; "
                     "default: <config name>.journal.sqlite beside the config). A simulated run continues the "
                     "account it holds on its next trading day, or resumes a day left unfinished")
    run.add_argument("--fresh-account", action="store_true", help="start a new account: the existing journal "
                     "(and the paper venue's state) is moved aside as <name>.<time>.bak, never deleted")

    record = sub.add_parser(
        "record", help="record the market data of CONFIG's venues to Parquet, without trading",
        description="Connect CONFIG's venues, subscribe to every instrument they list and write every market-data "
        "event (books as the adapter delivered them, trades, instrument statuses, session changes) to Parquet "
        "under DIR, partitioned by venue, symbol and date (README \"Recording and replay\"). No strategy runs, "
        "no order is sent, no journal is kept. Replay it with adapter: replay. Needs pyarrow "
        "(pip install 'psx-strategy-engine[record]').",
    )
    record.add_argument("config", type=Path, metavar="CONFIG")
    record.add_argument("--out", type=Path, required=True, metavar="DIR", help="the recording's folder "
                        "(created; a recording already there is added to, never overwritten)")
    record.add_argument("--speed", type=_speed, metavar="X", help="simulated clock pace (overrides run.speed)")
    record.add_argument("--seed", type=int, metavar="N", help="seed for the simulated market (overrides run.seed)")

    check = sub.add_parser(
        "check", help="validate CONFIG and load its strategies without trading",
        description="Validate CONFIG and load every strategy (syntax, hooks, params) without trading. "
        "Exit 0 when everything loads; exit 1 with a message naming file and line otherwise.",
    )
    check.add_argument("config", type=Path, metavar="CONFIG")

    halt = sub.add_parser(
        "halt", help="trigger the kill switch of the engine running CONFIG",
        description="Trigger the kill switch of the engine running CONFIG (found through the pid file it "
        "writes next to the config, e.g. config.pid). Default: halted (cancel every open order and keep "
        "at it until the venue confirms each final, naming those still working every 30 s; refuse every new "
        "one). --reducing: accept only orders that shrink a position. Same as kill -USR1 / -USR2 <pid>. "
        "The state holds until the engine restarts. Exit 1 when no engine runs for CONFIG. When CONFIG's market "
        "data comes over the bus with an account, the state is also broadcast on NATS to every engine of the "
        "account, logged in as CONFIG's bus options say (token_env/token_file, user + password_env/password_file "
        "or creds_file; tls_ca_file, tls_cert_file, tls_key_file): secrets only from the environment or files; an "
        "engine cut off from NATS during the broadcast reads the kept state when it reconnects.",
    )
    halt.add_argument("config", type=Path, metavar="CONFIG")
    halt.add_argument("--reducing", action="store_true", help="reducing instead of halted")
    halt.add_argument("--clear", action="store_true", help="bus accounts: delete the kept state, so engines start "
                      "active again (running ones stay halted until restarted)")

    report = sub.add_parser(
        "report", help="draw a JSON run report (or a folder of runs) as self-contained HTML pages",
        description="Read a JSON run report (engine run --report FILE) and write it as one self-contained HTML "
        "page: summary tables, PnL and positions over time per strategy, the price path per instrument with "
        "the fills and the circuit band, rejects by code, session phases shaded. The page loads nothing from "
        "the network and needs no JavaScript. Charts need a report with a timeline (this engine version); "
        "older reports get the tables. Prints the page's path; exit 1 naming the file when the report cannot "
        "be read or is not a run report.",
    )
    report.add_argument("report", type=Path, metavar="REPORT_JSON|DIR", help="the JSON run report to draw, or a "
                        "folder of runs: then each run report in it (recursively) gets its page beside it "
                        "(REPORT.html, when missing; a multi-day run also REPORT.<day>.html per day) and the "
                        "folder one multi-day summary page (equity curve, "
                        "drawdown, PnL per day, fees, every trade; README \"Multi-day reports\")")
    report.add_argument("--html", type=Path, metavar="FILE", help="where to write the page "
                        "(default: REPORT_JSON with .html instead of .json; for a folder DIR/summary.html)")

    feed = sub.add_parser(
        "feed", help="hold CONFIG's market-data connections and publish them on NATS for many engines",
        description="Run each venue's market_data adapter of CONFIG once (within the venue's connection cap) and "
        "publish every book change, trade and instrument status on NATS subject md.<venue>.<symbol> with a "
        "per-symbol sequence number, a full snapshot every --snapshot-s, a heartbeat on mdhb.<venue>; JetStream "
        "stream MD_<VENUE> keeps a bounded window for gap replay. Engines read it with market_data adapter 'bus'. "
        "Runs until SIGINT/SIGTERM (exit 0); exit 1 when the config is invalid or NATS cannot be reached.",
    )
    feed.add_argument("config", type=Path, metavar="CONFIG")
    feed.add_argument("--nats", default="nats://127.0.0.1:4222", metavar="URL",
                      help="NATS server, nats:// or tls:// (default %(default)s); a user or password in it is "
                      "refused: use the flags below")
    login = feed.add_argument_group(
        "NATS login and TLS", "the same options as a bus venue's (README \"Many engines over NATS\"); a secret only "
        "by the name of its environment variable or file, never on the command line. Credentials over plain "
        "nats:// to another machine are refused: use tls://")
    login.add_argument("--nats-token-env", metavar="VAR", help="the token is in this environment variable")
    login.add_argument("--nats-token-file", type=Path, metavar="FILE", help="the token is the first line of FILE")
    login.add_argument("--nats-user", metavar="NAME", help="log in as NAME (with --nats-password-env or -file)")
    login.add_argument("--nats-password-env", metavar="VAR", help="the password is in this environment variable")
    login.add_argument("--nats-password-file", type=Path, metavar="FILE", help="the password is the first line "
                       "of FILE")
    login.add_argument("--nats-creds-file", type=Path, metavar="FILE", help="a NATS .creds file (user JWT and nkey "
                       "seed: an account per desk)")
    login.add_argument("--nats-tls-ca-file", type=Path, metavar="FILE", help="verify the server against this CA "
                       "(PEM; default: the system's CAs); makes TLS required, also for nats://")
    login.add_argument("--nats-tls-cert-file", type=Path, metavar="FILE", help="client certificate (PEM)")
    login.add_argument("--nats-tls-key-file", type=Path, metavar="FILE", help="the client certificate's key (PEM)")
    feed.add_argument("--snapshot-s", type=float, default=1.0, metavar="S", help="full-book snapshot period")
    feed.add_argument("--heartbeat-s", type=float, default=0.5, metavar="S", help="heartbeat period")
    feed.add_argument("--window-msgs", type=int, default=5000, metavar="N", help="replay window per symbol")
    feed.add_argument("--window-s", type=float, default=60.0, metavar="S", help="replay window age")
    feed.add_argument("--venue", action="append", default=[], metavar="NAME", help="only this venue (repeatable)")
    feed.add_argument("--engines", nargs="+", type=Path, default=[], metavar="ENGINE_CONFIG", help="refuse to start "
                      "when these engines' account.cash, holdings and rate_limits add up to more than CONFIG's")
    feed.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="WARNING")

    sub.add_parser("codes", help="print every reject code and its sentence")

    journal = sub.add_parser("journal", help="look into a journal", description="Look into an engine's "
                             "journal (read only: safe while the engine runs).")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    inspect = journal_sub.add_parser(
        "inspect", help="print orders, fills, positions and account from JOURNAL",
        description="Print a journal for a human: its runs, the account (cash, unsettled cash, holdings), "
        "positions per strategy replayed from every applied fill, open orders, the last orders and fills, "
        "kill-switch and MMP state, and which strategies saved state. Exit 1 naming the file when it is not "
        "a journal this engine reads.",
    )
    inspect.add_argument("journal", type=Path, metavar="JOURNAL", help="e.g. config.journal.sqlite")
    inspect.add_argument("--orders", type=int, default=20, metavar="N", help="last N orders (default 20)")
    inspect.add_argument("--fills", type=int, default=20, metavar="N", help="last N fills (default 20)")
    export = journal_sub.add_parser(
        "export", help="write the audit trail of JOURNAL (every order event and fill) as CSV or Parquet",
        description="Write the audit trail (README \"Regulatory controls (SECP)\"): one row per order event "
        "(sent, refused, acknowledged, amended, cancel requested, cancelled, rejected, expired, filled) and one "
        "per fill, with algo id, strategy, client and venue order ids, the engine's and the venue's time, reject "
        "code and reason. Read only: safe while the engine runs. Amounts are exact decimal text.",
    )
    export.add_argument("journal", type=Path, metavar="JOURNAL", help="e.g. config.journal.sqlite")
    export.add_argument("--format", required=True, choices=("csv", "parquet"),
                        help="csv (no extra package) or parquet (needs pyarrow: pip install '.[audit]')")
    export.add_argument("--out", type=Path, metavar="PATH", help="file to write: a regular file (replaced) or a "
                        "new path (default: <JOURNAL>.audit.<format> beside the journal); written owner-only")

    _add_data_parser(sub)

    sandbox = sub.add_parser(
        "sandbox", help="run a venue's local sandbox server (psx, pulse, midchains, algo724, psx_feed, optimus)",
        description="Run a venue's local sandbox server on 127.0.0.1, on the one simulated venue "
        "(adapters/sim: matching engine, synthetic market, sessions, faults): psx (the whole PSX venue: Live "
        "Feed WebSocket and Optimus REST broker with webhooks, one market), pulse (JSON-RPC WebSocket), "
        "midchains (FIX 4.2 order entry and market data, and the WebSocket JSON API, one market), algo724 "
        "(Cadenza REST and its Centrifugo streams), psx_feed or optimus (one half of psx alone). "
        "Every sandbox takes the same flags (--host, its ports, --seed, --no-market, --always-open, --speed, "
        "--start, --duration, --fault, --log-level, --config, and --run CONFIG with --report/--html/--journal to "
        "run an engine against it in the same process) plus its protocol's own; --fault SPEC is one vocabulary "
        "(KIND[@WHEN[/EVERY]][,key=value...]) and each venue refuses by name the kinds it does not play; "
        "--document-literal answers only the venue document's shapes (every extension off; --extension NAME / "
        "--no-extension NAME for one). "
        "'engine sandbox VENUE --help' lists the flags and the venue's fault kinds.",
    )
    sandbox.add_argument("adapter", metavar="VENUE", help="psx, or a registered adapter name, e.g. pulse")
    sandbox.add_argument("args", nargs=argparse.REMAINDER, help="the server's own arguments")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _decimal_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"takes a number, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _add_data_parser(sub: Any) -> None:
    """``engine data import``, added to the subparsers ``sub`` (argparse's action class is private,
    hence Any) in a block of its own, apart from the other commands."""
    data = sub.add_parser("data", help="bring outside market history into the recording format",
                          description="Market data outside a run: import CSV history into the recording format "
                          "the replay adapter plays (README \"Importing history\").")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    imp = data_sub.add_parser(
        "import", help="CSV daily bars or trade prints into a recording folder",
        description="Read PSX daily OHLCV bars (date,symbol,open,high,low,close,volume[,ldcp]) or trade prints "
        "(time,symbol,price,qty[,side][,trade_id]) from CSV and write them as a recording: each day's session "
        "changes, a reference price, and a coarse synthetic book walked open -> low/high -> close with trade "
        "prints at the touches (engine/history/bars.py says exactly how). All or nothing: a bad cell exits 1 "
        "naming FILE:LINE:COLUMN and nothing is written. Needs pyarrow (pip install '.[record]').")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="CSV files, all of one --kind")
    imp.add_argument("--kind", required=True, choices=("bars", "trades"), help="daily OHLCV bars or trade prints")
    imp.add_argument("--out", required=True, type=Path, metavar="DIR", help="the recording folder (created, or "
                     "added to: a file already there is refused unless --replace)")
    imp.add_argument("--venue", default="psx", help="the venue the events are filed under (default psx)")
    imp.add_argument("--sessions", default="broker-doc", metavar="PROFILE", help="the session profile whose "
                     "phases the days get (default broker-doc)")
    imp.add_argument("--tick-size", type=_decimal_arg, default=Decimal("0.01"), metavar="X",
                     help="prices must be on it; the book's levels are this far apart (default 0.01)")
    imp.add_argument("--levels", type=_positive_int, default=3, metavar="N", help="book levels a side (default 3)")
    imp.add_argument("--half-spread", type=_positive_int, default=1, metavar="TICKS",
                     help="best bid and ask this many ticks from the price (default 1)")
    imp.add_argument("--level-qty", type=_decimal_arg, metavar="QTY", help="shares at each level (default: bars, "
                     "volume / (4 x levels); trades, the print's qty)")
    imp.add_argument("--steps", type=_positive_int, default=0, metavar="N", help="bars: prices between touches "
                     "(default 0)")
    imp.add_argument("--replace", action="store_true", help="overwrite files an earlier identical import wrote")


def cmd_data(args: argparse.Namespace) -> int:
    """``engine data import``; every failure names what is wrong and leaves no file behind."""
    from engine.history.bars import BookShape
    from engine.history.csvread import CsvInputError
    from engine.history.importer import import_history
    from engine.progress import Progress
    from engine.sessions import shipped_profiles

    if args.levels < 1 or args.half_spread < 1:
        print("engine: --levels and --half-spread must be at least 1", file=sys.stderr)
        return 2
    if args.sessions not in shipped_profiles():
        print(f"engine: --sessions {args.sessions}: unknown profile (known: {', '.join(sorted(shipped_profiles()))})",
              file=sys.stderr)
        return 2
    shape = BookShape(args.tick_size, args.half_spread, args.levels, args.level_qty, args.steps)
    try:
        result = import_history(args.files, args.kind, args.out, args.venue, shape, args.sessions, args.replace,
                                progress=lambda label, total, unit: Progress(label, total, unit))
    except CsvInputError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        print("engine: nothing imported", file=sys.stderr)
        return 1
    except ImportError as exc:  # pyarrow missing
        print(f"engine: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"engine: {exc}", file=sys.stderr)
        print("engine: nothing imported", file=sys.stderr)
        return 1
    for source, columns in result.ignored.items():
        print(f"{source}: ignored columns {', '.join(columns)}")
    days = f"{result.days[0]} to {result.days[-1]}" if len(result.days) > 1 else "".join(result.days)
    print(f"{result.out}: {result.events:,} events ({result.rows:,} rows) in {len(result.files)} files; "
          f"{len(result.symbols)} symbols ({', '.join(result.symbols)}), {len(result.days)} days {days}")
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    """The local engine by its pid file, and every engine on the account over NATS when CONFIG's
    market data comes over the bus with an ``account`` (README "Many engines over NATS")."""
    import os
    import signal

    from engine.app import pid_file_for

    # the broadcast first; a failed one (NATS down) still signals the local engine, then exits 1
    broadcast = _halt_broadcast(args)
    if args.clear:
        return broadcast or 0
    pid_file = pid_file_for(args.config)
    try:
        if not pid_file.is_file():  # reading a FIFO would block forever
            raise FileNotFoundError(pid_file)
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        if broadcast is not None:
            return broadcast
        print(f"engine: no running engine for {args.config} (no readable pid file {pid_file})", file=sys.stderr)
        return 1
    signum = signal.SIGUSR2 if args.reducing else signal.SIGUSR1
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        if broadcast is not None:
            return broadcast
        print(f"engine: pid {pid} from {pid_file} is not running (stale pid file)", file=sys.stderr)
        return 1
    print(f"sent {signum.name} to engine pid {pid}: account -> {'reducing' if args.reducing else 'halted'}")
    return broadcast or 0


def _halt_broadcast(args: argparse.Namespace) -> int | None:
    """None: CONFIG has no bus account; 0: broadcast; 1: it could not be (named)."""
    import anyio

    from engine.bus.halt import broadcast_halt, bus_accounts
    from engine.venue.buswire import shown_url

    try:
        loaded = _load(args.config)
    except ConfigError:
        return None  # the pid file still works for a config this engine cannot read
    try:
        accounts = bus_accounts(loaded)
    except ConfigError as exc:  # e.g. a password in nats_url: named, never echoed
        print(f"engine: cannot broadcast the kill switch: {exc}", file=sys.stderr)
        return 1
    if not accounts:
        if args.clear:
            print(f"engine: {args.config} names no bus account to clear", file=sys.stderr)
            return 1
        return None
    state = "clear" if args.clear else "reducing" if args.reducing else "halted"
    for connection, account in accounts:
        try:
            kept = anyio.run(broadcast_halt, connection.nats_url, account, state, connection)
        except Exception as exc:  # the reason names the server without its user part, and no secret
            print(f"engine: cannot broadcast the kill switch of account {account!r} over NATS at "
                  f"{shown_url(connection.nats_url)}: {exc}", file=sys.stderr)
            return 1
        print(f"account {account}: kill switch {kept} (halt.{account} on {shown_url(connection.nats_url)}, "
              "kept in KV bucket HALT)")
    return 0


def _load(path: Path):
    from engine.config import load_config

    return load_config(path)


def cmd_check(args: argparse.Namespace) -> int:
    from engine.app import Engine
    from engine.loader import load_strategies

    loaded = _load(args.config)
    strategies = load_strategies(loaded)
    Engine(loaded, strategies)  # builds venues (adapter options are validated) and runners
    for s in strategies:
        hooks = ", ".join(sorted(s.hooks)) or "none"
        print(f"ok  {s.name:<16} {s.file}  hooks: {hooks}")
    print(f"{args.config}: valid, {len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'} loaded")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from engine.app import run_config
    from engine.config import apply_overrides
    from engine.recording.listen import recording_config

    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"engine: --out {out} exists and is not a folder to record into", file=sys.stderr)
        return 1
    loaded = apply_overrides(_load(args.config), speed=args.speed, seed=args.seed)
    try:
        loaded = recording_config(loaded)
    except ValueError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 1
    cfg = loaded.config
    setup_logging(cfg.logging.level, cfg.logging.format, Redactor(loaded.secret_values))
    result = run_config(loaded, None, on_clock=lambda clock: setattr(TIME_FILTER, "clock", clock), record_to=out,
                        market_data_only=True)
    return result.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from engine.app import run_config
    from engine.config import apply_overrides
    from engine.outfile import check_output_path

    loaded = _load(args.config)
    loaded = apply_overrides(loaded, speed=args.speed, seed=args.seed, shutdown_timeout_s=args.shutdown_timeout)
    cfg = loaded.config
    redactor = Redactor(loaded.secret_values)
    setup_logging(args.log_level or cfg.logging.level, args.log_format or cfg.logging.format, redactor)
    # --report is relative to where the user is; run.report to the config file's folder
    if args.report is not None:
        report_path: Path | None = args.report
    else:
        report_path = None if cfg.run.report is None else loaded.resolve(cfg.run.report)
    # refused now, not after a day of trading: a report goes only to a regular file or a new path
    check_output_path(report_path, "--report" if args.report is not None else "run.report")
    check_output_path(args.html, "--html")
    result = run_config(loaded, report_path, on_clock=lambda clock: setattr(TIME_FILTER, "clock", clock),
                        fresh_account=args.fresh_account, journal_path=args.journal)
    if args.html is not None:
        from engine.report.page import write_html

        try:
            write_html(result.report, args.html, redactor)
        except OSError as exc:
            print(f"engine: cannot write the HTML report {args.html}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        log.info("html report written to %s", args.html)
    return result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """Draw a saved JSON report; every failure names the file and says what is wrong with it."""
    from engine.outfile import output_target
    from engine.report.page import check_report, write_html

    source: Path = args.report
    if source.is_dir():
        return cmd_report_dir(source, args.html)
    out: Path = args.html if args.html is not None else source.with_suffix(".html")
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"engine: cannot read the report {source}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"engine: {source} is not a JSON run report (not UTF-8 text)", file=sys.stderr)
        return 1
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"engine: {source}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})", file=sys.stderr)
        return 1
    problem = check_report(report)
    if problem is not None:
        print(f"engine: {source}: {problem}", file=sys.stderr)
        return 1
    try:
        output_target(out)
    except OutputPathError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 1
    if out.resolve() == source.resolve():
        print(f"engine: refusing to write the HTML page over the report itself ({source}); pass --html FILE",
              file=sys.stderr)
        return 1
    try:
        write_html(report, out)
    except OSError as exc:
        print(f"engine: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


def cmd_report_dir(folder: Path, html: Path | None) -> int:
    """``engine report DIR``: a day page per run that has none, then the multi-day summary page."""
    from engine.outfile import output_target, write_atomic
    from engine.report.summary import RunsError, find_runs, render_summary, summarize, write_pages

    out = html if html is not None else folder / "summary.html"
    try:
        output_target(out)
        runs, skipped = find_runs(folder)
    except (OutputPathError, RunsError) as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 1
    for line in skipped:
        print(f"engine: skipped {line}", file=sys.stderr)
    for run in runs:
        try:
            for page in write_pages(run):
                print(page)
        except OSError as exc:
            print(f"engine: cannot write a page of {run.path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    try:
        write_atomic(out, render_summary(summarize(runs), out.absolute().parent))
    except OSError as exc:
        print(f"engine: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    if args.journal_command == "export":
        from engine.auditexport import ExportError, export

        try:
            path, rows = export(args.journal, args.format, args.out)
        except ExportError as exc:
            print(f"engine: {exc}", file=sys.stderr)
            return 1
        print(f"{path}: {rows} rows")
        return 0
    from engine.journalview import inspect_text

    print(inspect_text(args.journal, orders=args.orders, fills=args.fills))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from engine.sandboxrun import sandbox_main

    return sandbox_main(args.adapter, args.args, setup_logging=setup_logging,
                        on_clock=lambda clock: setattr(TIME_FILTER, "clock", clock))


def cmd_feed(args: argparse.Namespace) -> int:
    from engine.bus.allocation import check_allocation
    from engine.bus.feed import FeedSettings, feed_main
    from engine.venue.buswire import NatsAuth, nats_connection

    loaded = _load(args.config)
    setup_logging(args.log_level, "human", Redactor(loaded.secret_values))
    problems = check_allocation(loaded, [_load(path) for path in args.engines])
    if problems:
        raise StartupError("the engines' shares exceed the account:\n  " + "\n  ".join(problems))
    try:
        connection = nats_connection(
            nats_url=args.nats, **{name: getattr(args, f"nats_{name}") for name in NatsAuth.model_fields})
    except ValueError as exc:  # names the option, never echoes the URL's user part
        raise StartupError(f"engine feed: {exc}") from None
    settings = FeedSettings(nats_url=connection.nats_url, snapshot_s=args.snapshot_s, heartbeat_s=args.heartbeat_s,
                            window_msgs=args.window_msgs, window_s=args.window_s, venues=tuple(args.venue),
                            nats_auth=connection)
    return feed_main(loaded, settings)


def cmd_codes(_args: argparse.Namespace) -> int:
    from engine.rejects import REJECT_CODES

    for code, sentence in sorted(REJECT_CODES.items()):
        print(f"{code}  {sentence}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        setup_logging("WARNING")
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "record":
            return cmd_record(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "halt":
            return cmd_halt(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "journal":
            return cmd_journal(args)
        if args.command == "sandbox":
            return cmd_sandbox(args)
        if args.command == "data":
            return cmd_data(args)
        if args.command == "feed":
            return cmd_feed(args)
        return cmd_codes(args)
    except (ConfigError, StrategyLoadError, StartupError) as exc:
        print(f"engine: {exc}", file=sys.stderr)
        print("engine: refusing to start", file=sys.stderr)
        return 1
    except OutputPathError as exc:  # the run is over; its report cannot be written where asked
        print(f"engine: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
