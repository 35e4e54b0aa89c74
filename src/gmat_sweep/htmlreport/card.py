"""``Sweep._repr_html_``: a sweep as a compact card in Jupyter (no images, no scripts)."""

from __future__ import annotations

from html import escape
from typing import Any

from .facts import Facts, gather, script_name, short_error

STYLE = ("font-family:system-ui,sans-serif;font-size:13px;border:1px solid #ccc;border-radius:6px;"
         "padding:8px 12px;max-width:900px")


def card(sweep: Any) -> str:
    """The card: counts, design kind and size, parameters and ranges, slowest runs, first failures, engine."""
    from ..manifest import ManifestError

    try:
        facts = gather(sweep, slowest=3, failures=3)
    except ManifestError:  # not started yet: nothing recorded to show
        return (f'<div class="gmat-sweep-card" style="{STYLE}"><b>Sweep</b> of <code>{escape(sweep.source.path)}'
                f"</code>: {escape(sweep.design.kind)} design, {len(sweep)} runs, not started "
                f"(no manifest in <code>{escape(sweep.out)}</code>)</div>")
    parts = [f'<div class="gmat-sweep-card" style="{STYLE}">',
             f"<div><b>Sweep</b> of <code>{escape(script_name(facts))}</code>: {escape(facts.kind)} design, "
             f"{facts.runs} runs &middot; <code>{escape(facts.out)}</code></div>",
             f"<div>{counts_html(facts)}</div>",
             f"<div>{parameters_html(facts)}</div>"]
    if len(facts.slowest):
        slow = "; ".join(f"run {i} {row['duration']:.3f} s" for i, row in facts.slowest.iterrows())
        parts.append(f"<div>slowest: {escape(slow)}</div>")
    if facts.failed_total:
        parts.append(failures_html(facts, "first failures"))
    parts.append(f'<div style="color:#555">{escape(facts.engine_line)}; gmat-sweep '
                 f"{escape(str(facts.versions.get('gmat-sweep', '?')))}</div></div>")
    return "\n".join(parts)


def counts_html(facts: Facts) -> str:
    colours = {"ok": "#2e7d32", "failed": "#c62828", "missing": "#6d6d6d"}
    badges = " ".join(f'<span style="color:{colours[k]};font-weight:600">{k} {v}</span>'
                      for k, v in facts.counts.items())
    if facts.partial:
        badges += (f' &middot; <span style="color:#b26a00">partial: {facts.counts["missing"]} of {facts.runs} runs '
                   "have not finished</span>")
    return badges


def parameters_html(facts: Facts) -> str:
    return "parameters: " + "; ".join(f"<code>{escape(p)}</code> {escape(r)}" for p, r in facts.parameters)


def failures_html(facts: Facts, title: str) -> str:
    rows = "".join(f"<li>run {i}: {escape(short_error(row['error']))}</li>" for i, row in facts.failures.iterrows())
    more = facts.failed_total - len(facts.failures)
    tail = f"<li>... and {more} more</li>" if more > 0 else ""
    return f'<div>{escape(title)}:<ul style="margin:2px 0">{rows}{tail}</ul></div>'
