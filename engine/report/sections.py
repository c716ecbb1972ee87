"""The page's text sections: header, summary cards, the strategies table, rejects by code, the
kill switch and MMP, venues and their accounts, orders left working, anomalies. Each reads the
report defensively (an older report lacks keys) and escapes every string it shows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from engine.rejects import describe
from engine.report.charts import WIDTH, px
from engine.report.style import PALETTE, SELL
from engine.report.text import count_or_zero, decimal_of, esc, fmt_money, fmt_num, int_or_zero, parse_ts


def _ns_time(value: object, tz: dt.tzinfo) -> str:
    """Kill-switch history times are ns since the epoch; show them as local date and time."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**15:
        return dt.datetime.fromtimestamp(value // 1_000_000_000, tz).strftime("%Y-%m-%d %H:%M:%S")
    moment = parse_ts(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else str(value)


def report_currency(report: dict[str, Any]) -> str:
    """What the page's amounts are in: the venues' account currency (``venues.<name>.currency``;
    PKR for a report written before venues stated one, all PSX cash accounts), or, where venues
    settle in different currencies, a phrase saying so (a strategy's PnL is in its venue's)."""
    venues = report.get("venues") if isinstance(report.get("venues"), dict) else {}
    stated = {str(v.get("currency") or "PKR") for v in venues.values() if isinstance(v, dict)}
    if len(stated) > 1:
        return "each venue's account currency"
    return stated.pop() if stated else "PKR"


def rejects_section(report: dict[str, Any], colors: dict[int, str], strip: str) -> str:
    """Rejects by code as bars with each code's sentence, then the time strip."""
    counts = report.get("rejects_by_code") or {}
    rows = sorted(((int_or_zero(code), count_or_zero(n)) for code, n in counts.items() if count_or_zero(n) > 0),
                  key=lambda r: (-r[1], r[0]))
    parts = ['<h2 id="rejects">Rejects by code</h2>']
    if not rows:
        parts.append('<p class="muted">No order was rejected.</p>')
        return "".join(parts) + strip
    top = max(n for _, n in rows)
    row_h, label_w = 28, 700
    bar_x, bar_w = label_w, WIDTH - label_w - 60
    height = row_h * len(rows) + 8
    body = []
    for k, (code, n) in enumerate(rows):
        y = 4 + k * row_h
        sentence = describe(code)
        w = max(bar_w * n / top, 2)
        body.append(
            f'<g class="reject-bar"><title>{code}: {esc(sentence)} ({n})</title>'
            f'<text x="0" y="{y + 18}" font-size="12.5" font-weight="650" fill="#111827">{code}</text>'
            f'<text x="46" y="{y + 18}" font-size="12.5" fill="#374151">{esc(sentence)}</text>'
            f'<rect x="{bar_x}" y="{y + 5}" width="{px(w)}" height="{row_h - 10}" rx="3" '
            f'fill="{colors.get(code, SELL)}" fill-opacity=".8"/>'
            f'<text x="{px(bar_x + w + 6)}" y="{y + 18}" font-size="12.5" font-weight="600" fill="#111827">{n}</text>'
            "</g>")
    parts.append(f'<svg class="chart rejects" viewBox="0 0 {WIDTH} {height}" role="img" '
                 f'aria-label="rejects by code">{"".join(body)}</svg>')
    return "".join(parts) + strip


def header_section(report: dict[str, Any]) -> str:
    """The title and the run's facts: days, clock, seed, what stopped it, wall time."""
    days = [str(d) for d in report.get("trading_days") or []]
    title = "Run report"
    if days:
        title += f": {days[0]}" + (f" to {days[-1]} ({len(days)} trading days)" if len(days) > 1 else "")
    wall = report.get("wall_seconds")
    meta = [
        ("trading days", ", ".join(days) or "none"),
        ("clock", report.get("clock", "?")),
        ("seed", report.get("seed", "?")),
        ("stopped by", report.get("stopped_by", "?")),
        ("wall time", f"{wall} s" if wall is not None else "?"),
    ]
    sessions = report.get("sessions")
    if isinstance(sessions, list) and sessions:
        meta.append(("sessions", " → ".join(str(s) for s in sessions)))
    items = "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in meta)
    return f'<header><h1>{esc(title)}</h1><div class="meta">{items}</div></header>'


def cards_section(report: dict[str, Any]) -> str:
    """The summary cards: PnL, fills, orders, rejects, kill switch."""
    strategies = {n: s for n, s in (report.get("strategies") or {}).items() if isinstance(s, dict)}
    realized = sum((decimal_of(s.get("realized_pnl")) or Decimal(0) for s in strategies.values()), Decimal(0))
    unrealized = sum((decimal_of(s.get("unrealized_pnl")) or Decimal(0) for s in strategies.values()), Decimal(0))
    fees = sum((decimal_of(s.get("fees")) or Decimal(0) for s in strategies.values()), Decimal(0))
    orders = report.get("orders") or {}
    left = _left_working(report)
    rejects = sum(n for n in (report.get("rejects_by_code") or {}).values() if isinstance(n, int))
    ks = report.get("kill_switch") or {}
    state = str(ks.get("state", "n/a"))
    badge = {"active": "ok", "reducing": "warn", "halted": "bad"}.get(state, "")
    cards = [
        ("PnL", fmt_money(realized + unrealized), f"realized {fmt_num(realized)} net of fees {fmt_num(fees)} · "
         f"unrealized {fmt_num(unrealized)}"),
        ("fills", fmt_num(report.get("fills", "?")), f"{fmt_num(orders.get('submitted', '?'))} orders submitted"),
        ("orders", f"{fmt_num(orders.get('filled', 0))} filled",
         f"{fmt_num(orders.get('cancelled', 0))} cancelled · {fmt_num(orders.get('expired', 0))} expired · "
         f"{fmt_num(orders.get('open_at_exit', 0))} open at exit"
         + (f' · <span class="badge bad">{fmt_num(len(left))} left working</span>' if left else "")),
        ("rejects", fmt_num(rejects), f"{len(report.get('rejects_by_code') or {})} distinct codes"
         + (f" · {fmt_num(orders['refused'])} refused by the engine" if orders.get("refused") else "")),
        ("kill switch", f'<span class="badge {badge}">{esc(state)}</span>', esc(ks.get("reason", "")) or "&nbsp;"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
        for k, v, s in cards) + "</div>"


def strategies_section(report: dict[str, Any], colors: dict[str, str]) -> str:
    """One table row per strategy: state, counts, position and PnL."""
    head = ("strategy", "state", "orders", "fills", "rejects", "MMP", "position", "gross", "fees", "realized (net)",
            "unrealized")
    numeric = {"orders", "fills", "rejects", "MMP", "gross", "fees", "realized (net)", "unrealized"}
    rows = []
    for name, s in (report.get("strategies") or {}).items():
        if not isinstance(s, dict):
            continue
        position = " ".join(f"{esc(sym)}:{fmt_num(q)}" for sym, q in (s.get("position") or {}).items()
                            if decimal_of(q)) or '<span class="muted">flat</span>'
        state = str(s.get("state", "?"))
        badge = {"running": "ok", "stopped": "", "failed": "bad"}.get(state, "warn")
        failure = f'<div class="muted">{esc(s["failure"])}</div>' if s.get("failure") else ""
        cells = [
            f'<i class="sw" style="background:{colors.get(name, PALETTE[0])}"></i><b>{esc(name)}</b>',
            f'<span class="badge {badge}">{esc(state)}</span>{failure}',
            fmt_num(s.get("orders", "")), fmt_num(s.get("fills", "")), fmt_num(s.get("rejects", "")),
            fmt_num(s.get("mmp_triggers", 0)), position,
            fmt_money(s.get("gross_pnl", "")), fmt_money(s.get("fees", "")),
            fmt_money(s.get("realized_pnl", "")), fmt_money(s.get("unrealized_pnl", "")),
        ]
        rows.append("<tr>" + "".join(
            f'<td class="{"n" if h in numeric else ""}">{c}</td>' for h, c in zip(head, cells, strict=True)) + "</tr>")
    header = "".join(f'<th class="{"n" if h in numeric else ""}">{esc(h)}</th>' for h in head)
    if not rows:
        return '<h2 id="strategies">Strategies</h2><p class="muted">No strategy ran.</p>'
    return f'<h2 id="strategies">Strategies</h2><table><tr>{header}</tr>{"".join(rows)}</table>'


def risk_section(report: dict[str, Any], tz: dt.tzinfo) -> str:
    """The kill switch's state and history, and market-maker protection triggers."""
    parts = ['<h2 id="risk">Kill switch and market-maker protection</h2>']
    ks = report.get("kill_switch")
    if isinstance(ks, dict):
        state = str(ks.get("state", "?"))
        badge = {"active": "ok", "reducing": "warn", "halted": "bad"}.get(state, "")
        line = f'<p>Account state at exit: <span class="badge {badge}">{esc(state)}</span>'
        if ks.get("reason"):
            line += f" — {esc(ks['reason'])}"
        if ks.get("source"):
            line += f' <span class="muted">(source: {esc(ks["source"])})</span>'
        parts.append(line + "</p>")
        history = ks.get("history") or []
        if history:
            rows = "".join(
                f"<tr><td>{esc(_ns_time(h.get('ts'), tz))}</td><td>{esc(h.get('state', ''))}</td>"
                f"<td>{esc(h.get('reason', ''))}</td></tr>" for h in history if isinstance(h, dict))
            parts.append(f"<table><tr><th>time</th><th>state</th><th>reason</th></tr>{rows}</table>")
        else:
            parts.append('<p class="muted">No escalation during the run.</p>')
    else:
        parts.append('<p class="muted">This report has no kill-switch section.</p>')
    if "mmp_triggers" in report:
        per = [(name, s.get("mmp_triggers", 0)) for name, s in (report.get("strategies") or {}).items()
               if isinstance(s, dict) and s.get("mmp_triggers")]
        detail = ", ".join(f"{esc(n)} {fmt_num(c)}" for n, c in per)
        parts.append(f"<p>Market-maker protection triggers: <b>{fmt_num(report['mmp_triggers'])}</b>"
                     + (f" ({detail})" if detail else "") + "</p>")
    return "".join(parts)


def _derivatives_account(account: dict[str, Any]) -> str:
    """Equity, margins and the signed positions of a derivatives account, in its currency."""
    currency = esc(account.get("currency", ""))
    reserved = account.get("reserved") if isinstance(account.get("reserved"), dict) else {}
    rows = [("equity", account.get("equity")), ("balance", account.get("balance")),
            (f"initial margin ({account.get('margin_source', '?')})", account.get("initial_margin")),
            ("maintenance margin", account.get("maintenance_margin")),
            ("available margin", account.get("available_margin")), ("reserved by open orders", reserved.get("margin"))]
    tables = [f"<table><tr><th>account</th><th class=\"n\">{currency}</th></tr>"
              + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(val)}</td></tr>'
                        for k, val in rows if val is not None) + "</table>"]
    positions = account.get("positions")
    if isinstance(positions, dict) and positions:
        body = "".join(
            f'<tr><td>{esc(sym)}</td><td>{esc(p.get("side", ""))}</td><td class="n">{fmt_num(p.get("qty"))}</td>'
            f'<td class="n">{fmt_num(p.get("avg_price"))}</td><td class="n">{fmt_num(p.get("realized_pnl"))}</td>'
            f'<td class="n">{fmt_num(p.get("unrealized_pnl"))}</td></tr>'
            for sym, p in positions.items() if isinstance(p, dict))
        tables.append('<table><tr><th>position</th><th>side</th><th class="n">qty</th><th class="n">avg price</th>'
                      f'<th class="n">realized ({currency})</th><th class="n">unrealized ({currency})</th></tr>'
                      f"{body}</table>")
    return f'<div class="row">{"".join(tables)}</div>'


def venues_section(report: dict[str, Any]) -> str:
    """Each venue's connection and its account: cash, holdings and the unsettled ledger."""
    venues = report.get("venues")
    if not isinstance(venues, dict) or not venues:
        return ""
    parts = ['<h2 id="venues">Venues</h2>']
    for name, v in venues.items():
        if not isinstance(v, dict):
            continue
        status = str(v.get("status", "?"))
        badge = "ok" if status == "connected" else "warn"
        parts.append(f'<h3>{esc(name)} <span class="badge {badge}">{esc(status)}</span> '
                     f'<span class="muted">disconnects: {fmt_num(v.get("disconnects", 0))}</span></h3>')
        data = v.get("market_data") if isinstance(v.get("market_data"), dict) else {}
        for label, counts in (("bad input", v.get("bad_input")), ("market data bad input", data.get("bad_input"))):
            if isinstance(counts, dict) and counts:
                parts.append(f'<p class="muted">{esc(label)}: ' + " · ".join(
                    f"{esc(kind)} {fmt_num(n)}" for kind, n in counts.items()) + "</p>")
        account = v.get("account")
        if not isinstance(account, dict):
            continue
        if account.get("kind") == "derivatives":
            parts.append(_derivatives_account(account))
            continue
        reserved = account.get("reserved") if isinstance(account.get("reserved"), dict) else {}
        cash_rows = [("cash (settled)", account.get("cash")), ("unsettled cash", account.get("unsettled_cash")),
                     ("buying power", account.get("buying_power")), ("reserved cash", reserved.get("cash"))]
        tables = ["<table>" + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(val)}</td></tr>'
                                      for k, val in cash_rows if val is not None) + "</table>"]
        holdings = account.get("holdings")
        if isinstance(holdings, dict) and holdings:
            rows = "".join(
                f'<tr><td>{esc(sym)}</td><td class="n">{fmt_num(h.get("settled"))}</td>'
                f'<td class="n">{fmt_num(h.get("unsettled"))}</td><td class="n">{fmt_num(h.get("total"))}</td></tr>'
                for sym, h in holdings.items() if isinstance(h, dict))
            tables.append('<table><tr><th>holding</th><th class="n">settled</th><th class="n">unsettled</th>'
                          f'<th class="n">total</th></tr>{rows}</table>')
        parts.append(f'<div class="row">{"".join(tables)}</div>')
        ledger = account.get("unsettled")
        if isinstance(ledger, list) and ledger:
            rows = "".join(
                f"<tr><td>{esc(e.get('kind', ''))}</td><td>{esc(e.get('symbol', ''))}</td>"
                f'<td class="n">{fmt_money(e.get("amount"))}</td><td>{esc(e.get("trade_day", ""))}</td>'
                f"<td>{esc(e.get('settle_day', ''))}</td></tr>" for e in ledger if isinstance(e, dict))
            entries = f"{len(ledger)} entr{'y' if len(ledger) == 1 else 'ies'}"
            parts.append(f"<details><summary>Unsettled ledger ({entries})</summary><table><tr>"
                         '<th>kind</th><th>symbol</th><th class="n">amount</th><th>trade day</th><th>settles</th>'
                         f"</tr>{rows}</table></details>")
    return "".join(parts)


def _left_working(report: dict[str, Any]) -> list[dict[str, Any]]:
    left = (report.get("orders") or {}).get("left_working")
    return [o for o in left if isinstance(o, dict)] if isinstance(left, list) else []


def left_working_section(report: dict[str, Any]) -> str:
    """The orders shutdown could not confirm final: still working at the venue, nobody watching."""
    left = _left_working(report)
    if not left:
        return ""
    keys = ("venue", "strategy", "client_id", "venue_order_id", "symbol", "side", "leaves", "status")
    rows = "".join("<tr>" + "".join(f"<td>{esc(o.get(k, ''))}</td>" for k in keys) + "</tr>" for o in left)
    return ('<h2 id="left-working">Orders left working</h2><p class="note">Shutdown could not confirm these '
            "final before <code>run.shutdown_timeout_s</code> (the run exited 3): they may still trade at the "
            "venue. The next start reconciles them from the journal.</p><table><tr>"
            + "".join(f"<th>{esc(k.replace('_', ' '))}</th>" for k in keys) + f"</tr>{rows}</table>")


def anomalies_section(report: dict[str, Any]) -> str:
    """Duplicate fills dropped and the engine's anomaly counts, with samples."""
    anomalies = report.get("anomalies") or {}
    dupes = report.get("duplicate_fills_dropped") or 0
    if not anomalies and not dupes:
        return ""
    parts = ['<h2 id="anomalies">Anomalies</h2>']
    if dupes:
        parts.append(f"<p>Duplicate fills dropped: <b>{fmt_num(dupes)}</b></p>")
    if anomalies:
        parts.append("<table>" + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(n)}</td></tr>'
                                         for k, n in anomalies.items()) + "</table>")
    samples = report.get("anomaly_samples") or []
    if samples:
        parts.append("<details><summary>Samples</summary><ul>"
                     + "".join(f"<li><code>{esc(s)}</code></li>" for s in samples) + "</ul></details>")
    return "".join(parts)


def dropped_note(timeline: dict[str, Any]) -> str:
    """What the timeline left out of a long run, so a reader knows the charts are thinned."""
    dropped = timeline.get("dropped") or {}
    said = []
    for key in ("samples", "fills", "rejects", "phases"):
        n = dropped.get(key) or 0
        if n:
            said.append(f"{n} {key}")
    if not said:
        return ""
    stride = dropped.get("sample_stride", 1)
    extra = f"; samples were thinned to one per {stride} intervals" if stride and stride > 1 else ""
    return (f'<p class="note">This run was long: to keep the report small, the timeline left out {esc(", ".join(said))}'
            f"{esc(extra)}. Counts and tables above are complete; charts show what was kept.</p>")
