"""``gmat-sweep report``: one self-contained HTML file (images embedded as data URIs, no scripts, no fonts or
stylesheets from elsewhere) that a colleague can open without Python or a network."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import pandas as pd

from .card import counts_html, failures_html
from .facts import Facts, gather, script_name

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#222;
padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}code{font-size:12px}.partial{background:#fff4e0;border:1px solid #f0b44c;
padding:8px 12px;border-radius:4px}.note{color:#666;font-size:13px}figure{margin:12px 0}
figure img{max-width:100%;border:1px solid #eee}.figures{display:flex;flex-wrap:wrap;gap:8px}
.figures figure{flex:1 1 440px}figcaption{font-size:13px;color:#444}
"""
# Columns a report plot leaves out unless asked: they grow with time in every run, or are positions on the map.
SKIP = ("Elapsed", "ModJulian", "Gregorian", "Epoch", "Latitude", "Longitude")
MAX_OUTPUTS = 3


def report(sweep: Any, path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> str:
    """Write the HTML report of ``sweep`` (a Sweep, out folder or bundle) to ``path``; returns the path.

    >>> report("sweeps/leo", "leo-report.html")
    """
    from ..plot._data import open_sweep

    sweep = open_sweep(sweep)
    facts = gather(sweep)
    html = render(sweep, facts, list(columns) if columns else None)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(html)
    return path


def render(sweep: Any, facts: Facts, columns: list[str] | None) -> str:
    title = f"gmat-sweep report: {script_name(facts)}"
    body = [f"<h1>{escape(title)}</h1>", f'<p class="note"><code>{escape(facts.out)}</code></p>']
    if facts.partial or facts.torn_tail:
        body.append(f'<p class="partial"><b>Partial sweep.</b> {facts.counts["missing"]} of {facts.runs} runs have '
                    "not finished: the sweep is still running or was interrupted. This report shows the "
                    f"{facts.runs - facts.counts['missing']} runs recorded so far. Finish it with "
                    f"<code>gmat-sweep resume {escape(facts.out)}</code>.</p>")
    body += [f"<p>{counts_html(facts)}</p>", "<h2>What was run</h2>", what_was_run(facts)]
    figures, notes = figures_for(sweep, facts, columns)
    body.append("<h2>Plots</h2>")
    body.append('<div class="figures">' + "".join(_figure(caption, data) for caption, data in figures) + "</div>")
    body += [f'<p class="note">{escape(n)}</p>' for n in notes]
    if facts.failed_total:
        body += ["<h2>Failures</h2>", failures_html(facts, f"{facts.failed_total} failed runs, with GMAT's messages")]
    if len(facts.slowest):
        body += ["<h2>Slowest runs</h2>", _table(facts.slowest.assign(duration=facts.slowest["duration"].round(3)))]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def what_was_run(facts: Facts) -> str:
    rows = [("script", f"<code>{escape(facts.script)}</code>"), ("script SHA-256", f"<code>{facts.sha256}</code>"),
            ("design", f"{escape(facts.kind)}, {facts.runs} runs"),
            ("parameters", "<br>".join(f"<code>{escape(p)}</code>: {escape(r)}" for p, r in facts.parameters)),
            ("engine", escape(facts.engine_line)),
            ("packages", escape(", ".join(f"{k} {v}" for k, v in facts.versions.items()))),
            ("started", escape(facts.created))]
    if facts.collect:
        rows.insert(4, ("collected", escape(", ".join(facts.collect))))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def figures_for(sweep: Any, facts: Facts, columns: list[str] | None) -> tuple[list[tuple[str, str]], list[str]]:
    """The plots that fit the design's layout, as (caption, base64 PNG); a plot that cannot be drawn is a note."""
    import gmat_sweep

    from .. import plot
    from ..plot._data import Columns

    table = Columns(sweep)
    outputs = columns or pick_outputs(sweep, table)
    params = [p for p in sweep.design.parameters if table.summary[p].astype(str).nunique() > 1]
    plans: list[tuple[str, Callable[[], Any]]] = []
    notes = [] if outputs else ["no numeric output that varies between runs: give columns= (CLI: --column) to "
                                "choose some"]
    if facts.layout == "grid":
        for z in outputs:
            if len(params) == 2:
                plans.append((f"{z} over the grid", lambda z=z: plot.heatmap(sweep, params[0], params[1], z)))
            elif params:
                plans.append((f"{z} along {params[0]}", lambda z=z: plot.line(sweep, params[0], z)))
    if facts.layout in ("samples", "dispersion") and outputs:
        numeric = [p for p in params if pd.api.types.is_numeric_dtype(table.summary[p])][:4]
        plans.append(("inputs against outputs", lambda: plot.scatter_matrix(sweep, numeric + outputs)))
        plans += [(f"distribution of {z}", lambda z=z: plot.histogram(sweep, z)) for z in outputs]
    for z in outputs:
        if table.find(z) is not None:
            plans.append((f"{z} over time across runs", lambda z=z: plot.band(sweep, z)))
    if facts.layout == "dispersion" and outputs and callable(getattr(gmat_sweep, "convergence", None)):
        plans += [(f"convergence of {z}", lambda z=z: plot.convergence(sweep, z)) for z in outputs[:1]]
    if any(c.endswith(".Latitude") for r in sweep.reports for c in table.report_columns(r)):
        plans.append(("ground tracks", lambda: plot.groundtrack(sweep)))
    if facts.failed_total or facts.partial:
        plans.append(("where the runs that are not ok are", lambda: plot.failures(sweep)))
    figures = []
    for caption, make in plans:
        try:
            figures.append((caption, png_base64(make())))
        except plot.PlotError as exc:
            notes.append(f"{caption}: not drawn ({exc})")
    return figures, notes


def pick_outputs(sweep: Any, table: Any) -> list[str]:
    """Up to three numeric report columns (then collected values) whose final value differs between runs."""
    candidates = [c for r in sweep.reports[:1] for c in table.report_columns(r)] + list(sweep.collect)
    chosen = []
    for name in candidates:
        if any(word in name for word in SKIP):
            continue
        try:
            values = table.numeric(name)
        except ValueError:
            continue
        if pd.api.types.is_numeric_dtype(values) and values.dropna().nunique() > 1:
            chosen.append(name)
        if len(chosen) == MAX_OUTPUTS:
            break
    return chosen


def png_base64(fig: Any, dpi: int = 80) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(caption: str, data: str) -> str:
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in [frame.index.name or ""] + list(frame.columns))
    rows = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in [i, *row]) + "</tr>"
                   for i, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value: Any) -> str:
    return f"{value:.8g}" if isinstance(value, float) else str(value)
