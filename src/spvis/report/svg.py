"""Inline SVG drawings for the report: precision-recall plots and per-track coverage timelines.

Plain strings, no plotting library: every text is escaped, coordinates are rounded to 0.1 px, and shapes
carry ``<title>`` tooltips so a reader can hover for the exact value.
"""

from __future__ import annotations

from html import escape

import numpy as np

from spvis.report.coverage import COVER_ABSENT, COVER_MISSED, Timeline
from spvis.report.pr_curves import PRCurve

# categorical palette (Tableau 10 without its grey, which marks missed frames)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
MISSED_COLOUR = "#b8b8b8"
ABSENT_COLOUR = "#eeeeee"
CURVE_COLOURS = {0.5: "#1f77b4", 0.75: "#ff7f0e"}


def colour_of(rank: int) -> str:
    """Colour of the ``rank``-th prediction of a video (cycles through the palette)."""
    return PALETTE[rank % len(PALETTE)]


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def pr_plot(curves: list[PRCurve], *, title: str, width: int = 300, height: int = 220) -> str:
    """Precision (y) vs recall (x) of ``curves`` (one line each, coloured by IoU), a legend line giving each AP."""
    left, right, top, bottom = 36, 10, 34, 30
    pw, ph = width - left - right, height - top - bottom

    def xy(r: float, p: float) -> tuple[float, float]:
        return left + r * pw, top + (1 - p) * ph

    parts = [f'<svg class="pr" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<text x="{left}" y="12" class="svg-title">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot-bg"/>']
    for v in np.linspace(0, 1, 6):
        x, _ = xy(v, 0)
        _, y = xy(0, v)
        parts.append(f'<line x1="{_f(x)}" y1="{top}" x2="{_f(x)}" y2="{top + ph}" class="grid"/>')
        parts.append(f'<line x1="{left}" y1="{_f(y)}" x2="{left + pw}" y2="{_f(y)}" class="grid"/>')
        parts.append(f'<text x="{_f(x)}" y="{top + ph + 12}" class="tick" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text x="{left - 4}" y="{_f(y + 3)}" class="tick" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 3}" class="axis" text-anchor="middle">recall</text>')
    parts.append(f'<text x="10" y="{top + ph / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 10 {top + ph / 2})">precision</text>')
    slot = pw / max(len(curves), 1)  # legend entries side by side between title and plot
    for i, c in enumerate(curves):
        colour = CURVE_COLOURS.get(c.iou, PALETTE[i % len(PALETTE)])
        points = " ".join(f"{_f(x)},{_f(y)}" for x, y in (xy(r, p) for r, p in zip(c.recall, c.precision)))
        label = f"AP{round(100 * c.iou)} {100 * c.ap:.1f}"  # AP50 / AP75: the AP at this curve's IoU
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8">'
                     f'<title>{escape(label)}</title></polyline>')
        lx = left + i * slot
        parts.append(f'<line x1="{_f(lx)}" y1="23" x2="{_f(lx + 14)}" y2="23" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{_f(lx + 18)}" y="27" class="legend">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, value) runs of equal consecutive values of a 1-D int array."""
    out = []
    start = 0
    for t in range(1, len(values) + 1):
        if t == len(values) or values[t] != values[start]:
            out.append((start, t, int(values[start])))
            start = t
    return out


def timeline_chart(timelines: list[Timeline], *, labels: list[str], colours: dict[int, str],
                   describe: dict[int, str], num_frames: int, bar_width: int = 640) -> str:
    """One row per GT track: frames coloured by the covering prediction, grey where missed, switches marked.

    ``colours`` / ``describe`` map result index -> colour / tooltip text; ``labels`` name the rows.
    """
    label_w, row_h, gap, top = 170, 14, 6, 18
    fw = bar_width / max(num_frames, 1)  # frame width in px
    height = top + len(timelines) * (row_h + gap) + 4
    width = label_w + bar_width + 12
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    ticks = sorted({0, num_frames - 1, *np.linspace(0, num_frames - 1, 6).round().astype(int).tolist()})
    for t in ticks:
        x = label_w + (t + 0.5) * fw
        parts.append(f'<text x="{_f(x)}" y="11" class="tick" text-anchor="middle">{t}</text>')
    for row, (tl, label) in enumerate(zip(timelines, labels)):
        y = top + row * (row_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + row_h - 3}" class="row-label" text-anchor="end">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + row_h / 2 - 1}" width="{bar_width}" height="2" '
                     f'fill="{ABSENT_COLOUR}"/>')
        for start, stop, who in _runs(tl.covering):
            if who == COVER_ABSENT:
                continue
            frames = f"frame {start}" if stop - start == 1 else f"frames {start}-{stop - 1}"
            if who == COVER_MISSED:
                fill, text = MISSED_COLOUR, f"{frames}: missed (no prediction at IoU >= 0.5)"
            else:
                ious = tl.cover_iou[start:stop]
                fill = colours.get(who, "#000000")
                text = f"{frames}: {describe.get(who, f'result {who}')}, IoU {ious.min():.2f}-{ious.max():.2f}"
            parts.append(f'<rect x="{_f(label_w + start * fw)}" y="{y}" width="{_f((stop - start) * fw)}" '
                         f'height="{row_h}" fill="{fill}"><title>{escape(text)}</title></rect>')
        for t in tl.switch_frames:
            x = label_w + t * fw
            parts.append(f'<g class="switch"><line x1="{_f(x)}" y1="{y - 3}" x2="{_f(x)}" y2="{y + row_h + 3}" '
                         f'stroke="#000" stroke-width="2"/><path d="M{_f(x - 4)},{y - 5} L{_f(x + 4)},{y - 5} '
                         f'L{_f(x)},{y} Z" fill="#000"/><title>ID switch at frame {t}</title></g>')
    parts.append("</svg>")
    return "".join(parts)
