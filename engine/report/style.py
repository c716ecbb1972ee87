"""The page's look: colours of the session phases, strategies, reject codes and fill sides, and the
stylesheet. Inline in the page (no external file): the page must open the same anywhere."""

from __future__ import annotations

#: background shade and legend label per session phase
PHASES: dict[str, tuple[str, str]] = {
    "pre_open": ("#fdf0c8", "pre-open"),
    "opening_match": ("#fbdcb8", "opening match"),
    "open": ("#e6f4e7", "open"),
    "break": ("#e1e8f4", "break"),
    "post_close": ("#ece3f6", "post-close"),
    "closed": ("#eeeeee", "closed"),
}
UNKNOWN_PHASE = "#f4f4f4"
PALETTE = ("#4e79a7", "#f28e2b", "#76b7b2", "#e15759", "#59a14f", "#b07aa1", "#edc948", "#9c755f", "#ff9da7",
           "#bab0ac")
REJECT_PALETTE = ("#dc2626", "#7c3aed", "#ea580c", "#0891b2", "#db2777", "#ca8a04", "#4b5563")
BUY, SELL, BAND, PRICE = "#15803d", "#dc2626", "#b45309", "#374151"

CSS = """
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --card: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
       sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 18px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
     font-weight: 620; }
h3 { font-size: 14px; margin: 18px 0 4px; font-weight: 620; }
p.sub { margin: 0 0 14px; color: var(--muted); }
nav { margin: 8px 0 18px; font-size: 13px; }
nav a { color: #2563eb; text-decoration: none; margin-right: 14px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 18px; color: var(--muted); font-size: 13px; }
.meta b { color: var(--ink); font-weight: 560; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 18px 0 4px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 620; font-variant-numeric: tabular-nums; }
.card .s { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }
th, td { padding: 5px 12px 5px 0; text-align: left; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 560; text-transform: uppercase; letter-spacing: .03em; }
td.n, th.n { text-align: right; padding-left: 12px; }
.pos { color: #15803d; } .neg { color: #b91c1c; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 560;
         background: #e5e7eb; }
.badge.ok { background: #dcfce7; color: #166534; } .badge.warn { background: #fef3c7; color: #92400e; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.note { background: #fffbeb; border: 1px solid #fde68a; border-radius: 8px; padding: 10px 14px; margin: 12px 0; }
.muted { color: var(--muted); }
figure { margin: 14px 0 22px; }
figcaption { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; margin-bottom: 4px; }
figcaption .t { font-weight: 620; }
.legend { display: inline-flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: var(--muted); }
.legend span { white-space: nowrap; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px;
      border: 1px solid rgba(0,0,0,.08); }
.ln { display: inline-block; width: 18px; height: 0; border-top: 2.5px solid; vertical-align: 3px; margin-right: 4px; }
.ln.dash { border-top-style: dashed; border-top-width: 1.5px; }
.ln.dot { border-top-style: dotted; border-top-width: 2px; }
.row { display: flex; flex-wrap: wrap; gap: 0 48px; align-items: flex-start; }
svg.chart { width: 100%; height: auto; display: block; overflow: visible; }
svg text { font-family: inherit; }
.hover { fill: transparent; }
.hover:hover { fill: rgba(17, 24, 39, .07); }
.fill-marker:hover { stroke-width: 2.5; }
details { margin: 6px 0; } summary { cursor: pointer; color: #2563eb; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { nav { display: none; } main { max-width: none; } }
"""
