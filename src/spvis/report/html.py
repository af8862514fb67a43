"""Rendering of the report page: one self-contained HTML string (inline CSS, JS, SVG and data-URI images).

Metric cells show rates x100 with one decimal (as papers write them) and carry the exact value returned by
``evaluate`` in ``data-value`` (Python ``repr``, so it round-trips) and in the tooltip; the whole metrics
dict is embedded as JSON in ``<script id="metrics-json">``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from html import escape

from spvis.evaluation.report import AP_KEYS, OCCLUSION_KEYS
from spvis.evaluation.vis_ap import APResult
from spvis.report.analysis import ReportAnalysis, VideoAnalysis
from spvis.report.assets import CONTENT_SECURITY_POLICY, CSS, ERROR_CATCHER, SORTER
from spvis.report.error_costs import ORACLE_LABEL, error_rows
from spvis.report.gallery import Thumbnail
from spvis.report.pr_curves import CURVE_IOUS, category_curves, mean_curve
from spvis.report.svg import MISSED_COLOUR, colour_of, pr_plot, timeline_chart

HOTA_KEYS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
CLEAR_KEYS = ("MOTA", "MOTP", "MODA", "sMOTA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "CLR_TP", "CLR_FN",
              "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag")
IDENTITY_KEYS = ("IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP")
COUNT_KEYS = {"CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "IDTP", "IDFN", "IDFP"}
UNDEFINED_AS_MINUS_ONE = set(AP_KEYS) | set(OCCLUSION_KEYS)  # the AP code's -1 = no GT; per-category AP50/75 too
MAX_TIMELINE_VIDEOS = 40  # timelines of the worst videos with errors; the per-video table lists them all
MAX_ERROR_ROWS = 500  # rows of the missed / false track tables


@dataclass
class ReportContent:
    """What the page shows; every number in it was computed before rendering."""

    metrics: dict  # the ``evaluate`` dict (with tracking per_category)
    ap: APResult  # the AP accumulation the PR curves are read from
    analysis: ReportAnalysis
    category_names: dict[int, str]
    header: dict[str, str]  # label -> value for the header table (files, counts, version, timestamp)
    gallery: list[tuple[VideoAnalysis, list[Thumbnail]]] = field(default_factory=list)
    image_root_given: bool = False
    ap_errors: dict | None = None  # ``spvis analyze``'s dict (error_costs.analyze_loaded)


def _fmt(key: str, value: float) -> str:
    """Display text: counts as integers, -1 of an AP/AR key (undefined) or NaN as a dash, rates x100 with one
    decimal (a MOTA of -1 is a real value and is shown)."""
    if key in COUNT_KEYS:
        return str(int(value))
    if (value == -1 and key in UNDEFINED_AS_MINUS_ONE) or math.isnan(value):
        return "–"
    return f"{100 * value:.1f}"


def _metric_td(key: str, value: float) -> str:
    exact = repr(int(value)) if key in COUNT_KEYS else repr(float(value))
    return (f'<td data-key="{escape(key)}" data-value="{exact}" data-sort="{exact}" title="{exact}">'
            f'{_fmt(key, value)}</td>')


def _num_td(value: float, text: str | None = None) -> str:
    """A numeric cell sorted by ``value`` (NaN sorts first)."""
    sort = "-1e300" if math.isnan(value) else repr(value)
    return f'<td data-sort="{sort}">{escape(text if text is not None else str(value))}</td>'


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def _text_td(text: str, sort: str | None = None) -> str:
    attr = f' data-sort="{escape(sort)}"' if sort is not None else ""
    return f'<td class="text"{attr}>{escape(text)}</td>'


def _metrics_table(table_id: str, rows: list[tuple[str, dict]], keys: tuple[str, ...], caption: str) -> str:
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join(f'<tr data-row="{escape(name)}"><th class="text">{escape(name)}</th>'
                   + "".join(_metric_td(k, values[k]) for k in keys) + "</tr>" for name, values in rows)
    return (f'<table id="{table_id}" class="metrics"><caption class="note">{escape(caption)}</caption>'
            f'<thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>')


def _header(content: ReportContent) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in content.header.items())
    return f'<header><h1>SPVIS evaluation report</h1><dl class="meta" id="report-info">{items}</dl></header>'


def _ap_section(m: dict) -> str:
    keys = AP_KEYS + tuple(k for k in OCCLUSION_KEYS if k in m)
    note = ("Official YouTube-VIS rules: track area small < 128², large > 256²; mean over 10 IoU thresholds "
            "0.50:0.95 and categories; – = undefined (no GT).")
    if "AP_light" in m:
        note += " OVIS occlusion buckets: light [0, 0.25], medium [0.25, 0.5], heavy [0.5, 1]."
    return ('<section id="ap"><h2>Video instance segmentation: AP / AR (×100)</h2>'
            + _metrics_table("ap-table", [("all", m)], keys, note) + "</section>")


def _tracking_section(m: dict) -> str:
    tracking = m["tracking"]
    thr = m.get("info", {}).get("track_score_thr")
    rows = [("class avg", tracking["class_avg"]), ("pooled", tracking["pooled"])]
    return ('<section id="tracking"><h2>Tracking: HOTA, CLEAR, Identity (×100; counts as numbers)</h2>'
            f'<p class="note">TrackEval rules on masks; predictions with score ≥ {thr} and a non-empty mask. '
            "class avg = mean over all GT categories (empty ones add zeros), pooled = counts summed over "
            "categories.</p>"
            + '<div class="side-by-side">'
            + _metrics_table("tracking-hota", rows, HOTA_KEYS, "HOTA family (mean over α = 0.05:0.95)")
            + _metrics_table("tracking-identity", rows, IDENTITY_KEYS, "Identity (IoU ≥ 0.5)") + "</div>"
            + _metrics_table("tracking-clear", rows, CLEAR_KEYS, "CLEAR MOT (IoU ≥ 0.5)")
            + "</section>")


def _category_section(content: ReportContent) -> str:
    m, counts = content.metrics, content.analysis.counts
    curves = {iou: category_curves(content.ap, iou) for iou in CURVE_IOUS}
    per_cat_tracking = m["tracking"].get("per_category", {})
    thr = content.analysis.track_score_thr
    head = ("<tr><th>id</th><th class='text'>name</th><th>GT tracks</th><th>predictions</th>"
            f"<th>pred. ≥ {thr:g}</th><th>AP</th><th>AP50</th><th>AP75</th><th>HOTA</th><th>IDF1</th>"
            "<th>IDSW</th></tr>")
    rows = []
    for cid, name in content.category_names.items():
        entry = m["per_category"][str(cid)]
        tr = per_cat_tracking.get(str(cid), {})
        cells = [_num_td(cid, str(cid)), _text_td(name)]
        cells += [_num_td(counts[k][cid], str(counts[k][cid])) for k in ("gt_tracks", "results", "kept")]
        cells.append(_metric_td("AP", entry["AP"]))
        for iou in CURVE_IOUS:
            curve = curves[iou][cid]
            cells.append(_metric_td(f"AP{round(iou * 100)}", curve.ap if curve else -1.0))
        cells += [_metric_td(k, tr[k]) if k in tr else "<td>–</td>" for k in ("HOTA", "IDF1", "IDSW")]
        rows.append(f'<tr data-category="{cid}">' + "".join(cells) + "</tr>")
    return ('<section id="categories"><h2>Per category</h2><p class="note">AP from the same accumulation as the '
            "table above (– = no GT of that category). Click a column to sort.</p>"
            f'<div class="scroll"><table id="category-table" class="sortable"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div></section>')


def _pr_section(content: ReportContent) -> str:
    overall = [c for c in (mean_curve(content.ap, iou) for iou in CURVE_IOUS) if c is not None]
    parts = ['<section id="pr-curves"><h2>Precision–recall curves</h2>'
             '<p class="note">Precision at the 101 official recall points (area all, 100 detections per video), '
             "read from the AP accumulation; all categories = mean over categories with GT.</p>"]
    if not overall:
        return "".join(parts) + '<p class="note">No category has ground truth: no curve.</p></section>'
    parts.append('<div id="pr-all">' + pr_plot(overall, title="All categories", width=380, height=280) + "</div>")
    per_cat = {iou: category_curves(content.ap, iou) for iou in CURVE_IOUS}
    parts.append('<h3>Per category</h3><div class="grid-plots" id="pr-categories">')
    for cid, name in content.category_names.items():
        curves = [per_cat[iou][cid] for iou in CURVE_IOUS if per_cat[iou][cid] is not None]
        if curves:
            parts.append(pr_plot(curves, title=f"{cid} {name}"[:40], width=240, height=190))
    parts.append("</div></section>")
    return "".join(parts)


def _video_section(content: ReportContent) -> str:
    thr = content.analysis.track_score_thr
    head = ("<tr><th>id</th><th class='text'>name</th><th>frames</th><th>GT tracks</th><th>predictions</th>"
            f"<th>pred. ≥ {thr:g}</th><th>mean best IoU</th><th>recall@0.5</th><th>missed</th><th>false</th>"
            "<th>IDSW</th><th>IDF1</th><th>HOTA</th><th>MOTA</th></tr>")
    rows = []
    for va in content.analysis.worst_first():
        v, tr = va.video, va.tracking
        cells = [_num_td(v.id, str(v.id)), _text_td(v.name), _num_td(v.length, str(v.length)),
                 _num_td(len(va.gt_tracks), str(len(va.gt_tracks))), _num_td(va.num_results, str(va.num_results)),
                 _num_td(len(va.kept), str(len(va.kept))), _num_td(va.mean_best_iou, _pct(va.mean_best_iou)),
                 _num_td(va.recall50, _pct(va.recall50)), _num_td(len(va.missed), str(len(va.missed))),
                 _num_td(len(va.false), str(len(va.false)))]
        cells += [_metric_td(k, tr[k]) for k in ("IDSW", "IDF1", "HOTA", "MOTA")]
        rows.append(f'<tr data-video="{v.id}">' + "".join(cells) + "</tr>")
    return ('<section id="videos"><h2>Per video (worst first)</h2><p class="note">mean best IoU: per GT track the '
            "best video IoU with a prediction of its category (any score), averaged (×100); recall@0.5: share of GT "
            "tracks with such a prediction at IoU ≥ 0.5; missed / false / IDSW / IDF1 / HOTA / MOTA: tracking view "
            f"(score ≥ {thr:g}), per video pooled over its categories. Click a column to sort.</p>"
            f'<div class="scroll"><table id="video-table" class="sortable"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div></section>')


def _result_text(r_index: int, category: str, score: float) -> str:
    return f"result {r_index} ({category}, score {score:.2f})"


def _timeline_block(va: VideoAnalysis, names: dict[int, str]) -> str:
    colours = {r.index: colour_of(rank) for rank, r in enumerate(va.kept)}
    describe = {r.index: _result_text(r.index, names.get(r.category_id, str(r.category_id)), r.score)
                for r in va.kept}
    labels = [f"GT {g.id} {names.get(g.category_id, g.category_id)}{' (crowd)' if g.iscrowd else ''}"[:28]
              for g in va.gt_tracks]
    used = {int(i) for tl in va.timelines for i in tl.covering[tl.covering >= 0]}
    false = {ft.result_index for ft in va.false}
    legend = "".join(f'<span><i class="sw" style="background:{colours[r.index]}"></i>{escape(describe[r.index])}'
                     f'{" – false track" if r.index in false else ""}</span>'
                     for r in va.kept if r.index in used or r.index in false)
    legend += (f'<span><i class="sw" style="background:{MISSED_COLOUR}"></i>missed frame</span>'
               "<span>▼ ID switch</span>")
    switches = sum(len(tl.switch_frames) for tl in va.timelines)
    title = (f"Video {va.video.id} {va.video.name}: {len(va.gt_tracks)} GT tracks, {switches} ID switches, "
             f"{len(va.missed)} missed, {len(va.false)} false tracks")
    chart = (timeline_chart(va.timelines, labels=labels, colours=colours, describe=describe,
                            num_frames=va.video.length) if va.timelines else '<p class="note">No GT tracks.</p>')
    return (f'<div class="video-timeline" data-video="{va.video.id}"><h3>{escape(title)}</h3>'
            f'<div class="legend-list">{legend}</div>{chart}</div>')


def _errors_section(content: ReportContent) -> str:
    names = content.category_names
    with_errors = [va for va in content.analysis.worst_first() if va.has_errors]
    parts = ['<section id="errors"><h2>Error analysis</h2>',
             '<h3 id="timelines-title">ID switches: coverage of each GT track over time</h3>'
             "<p class='note'>Each bar is a GT track over the frames of its video, coloured by the prediction "
             "of its category that covers it (mask IoU ≥ 0.5), grey where nothing does; ▼ marks an ID switch "
             "(a different prediction than the last one). Hover for frames and IoUs.</p><div id='timelines'>"]
    parts += [_timeline_block(va, names) for va in with_errors[:MAX_TIMELINE_VIDEOS]]
    if not with_errors:
        parts.append('<p class="note">No ID switch, missed frame or false track in any video.</p>')
    elif len(with_errors) > MAX_TIMELINE_VIDEOS:
        parts.append(f'<p class="note">{len(with_errors) - MAX_TIMELINE_VIDEOS} more videos with errors are not '
                     "drawn; the per-video table lists every video.</p>")
    parts.append("</div>")
    missed = [mt for va in content.analysis.worst_first() for mt in va.missed]
    parts.append(f'<h3>Missed GT tracks ({len(missed)})</h3><p class="note">GT tracks that no counted prediction '
                 "of their category covers in any frame, with the closest predictions (video IoU).</p>")
    head = ("<tr><th>video</th><th>GT id</th><th class='text'>category</th><th>frames</th>"
            "<th>best IoU, same class</th><th>best IoU, below threshold</th><th>best IoU, other class</th>"
            "<th class='text'>reason</th></tr>")
    rows = []
    for mt in missed[:MAX_ERROR_ROWS]:
        other = "–" if mt.best_other_category is None else \
            f"{mt.best_other_iou:.2f} ({names.get(mt.best_other_category, mt.best_other_category)})"
        rows.append(f'<tr data-gt="{mt.gt_id}">' + _num_td(mt.video_id, str(mt.video_id))
                    + _num_td(mt.gt_id, str(mt.gt_id)) + _text_td(names.get(mt.category_id, str(mt.category_id)))
                    + _num_td(mt.frames, str(mt.frames)) + _num_td(mt.best_iou, f"{mt.best_iou:.2f}")
                    + _num_td(mt.best_low_score_iou, f"{mt.best_low_score_iou:.2f}")
                    + _num_td(mt.best_other_iou, other) + _text_td(mt.reason) + "</tr>")
    parts.append(f'<div class="scroll"><table id="missed-table" class="sortable"><thead>{head}</thead>'
                 f'<tbody>{"".join(rows)}</tbody></table></div>')
    false = [ft for va in content.analysis.worst_first() for ft in va.false]
    parts.append(f'<h3>False tracks ({len(false)})</h3><p class="note">Counted predictions that cover no GT track '
                 "in any frame (duplicates: they reach IoU 0.5 with a GT another prediction already covers), with "
                 "their closest GT track (video IoU, any category).</p>")
    head = ("<tr><th>video</th><th>result</th><th class='text'>category</th><th>score</th><th>frames</th>"
            "<th>best IoU</th><th class='text'>closest GT</th><th class='text'>reason</th></tr>")
    rows = []
    for ft in false[:MAX_ERROR_ROWS]:
        closest = "–" if ft.best_gt_id is None else \
            f"GT {ft.best_gt_id} ({names.get(ft.best_gt_category, ft.best_gt_category)})"
        rows.append(f'<tr data-result="{ft.result_index}">' + _num_td(ft.video_id, str(ft.video_id))
                    + _num_td(ft.result_index, str(ft.result_index))
                    + _text_td(names.get(ft.category_id, str(ft.category_id))) + _num_td(ft.score, f"{ft.score:.3f}")
                    + _num_td(ft.frames, str(ft.frames)) + _num_td(ft.best_iou, f"{ft.best_iou:.2f}")
                    + _text_td(closest) + _text_td(ft.reason) + "</tr>")
    parts.append(f'<div class="scroll"><table id="false-table" class="sortable"><thead>{head}</thead>'
                 f'<tbody>{"".join(rows)}</tbody></table></div>')
    if len(missed) > MAX_ERROR_ROWS or len(false) > MAX_ERROR_ROWS:
        parts.append(f'<p class="note">Tables show the first {MAX_ERROR_ROWS} rows (worst videos first).</p>')
    parts.append("</section>")
    return "".join(parts)


def _ap_errors_section(content: ReportContent) -> str:
    """The ``spvis analyze`` table: AP points each error type costs when an oracle fixes it."""
    costs = content.ap_errors
    if costs is None:
        return ""
    thr = costs["thresholds"]
    kinds = list(costs["errors"]) + ["oracle_association"]
    head = "<tr><th class='text'>error type</th><th>dAP</th><th>dAP50</th><th>count</th></tr>"
    rows = []
    for kind, cells in zip(kinds, error_rows(costs)):
        tds = [_text_td(cells[0])] + [f"<td>{escape(v)}</td>" for v in cells[1:]]
        rows.append(f'<tr data-error="{escape(kind)}">' + "".join(tds) + "</tr>")
    base = " ".join(f"{k} {'–' if costs[k] is None else f'{100 * costs[k]:.1f}'}" for k in ("AP", "AP50"))
    return ('<section id="ap-errors"><h2>Where AP is lost: oracle fixes per error type (×100)</h2>'
            f'<p class="note">Base {escape(base)}. TIDE\'s procedure on video IoU: at each IoU threshold every '
            f"prediction is a true positive or one error type (background below {thr['background']:g}, TIDE's "
            "precedence), each type is fixed alone by an oracle and the official AP recomputed: dAP (the rows "
            "overlap, so they need not add up). count: errors at IoU "
            f"{thr['foreground']:g} (GT tracks for missed). {escape(ORACLE_LABEL)}: every predicted frame re-linked "
            "to the GT track it overlaps most, the AP a tracker that knows the identities would reach with these "
            "masks (count: predictions changed). Same numbers as <code>spvis analyze</code>.</p>"
            f'<table id="ap-errors-table" class="metrics"><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
            "</table></section>")


def _gallery_section(content: ReportContent) -> str:
    parts = ['<section id="worst-videos"><h2>Worst videos</h2>']
    if not content.image_root_given:
        parts.append('<p class="note">Run with <code>--image-root</code> to see frames of the worst videos here.</p>')
    elif not content.gallery:
        parts.append('<p class="note">No video to show.</p>')
    else:
        parts.append('<p class="note">GT: dashed white outline; predictions (score ≥ threshold): solid outline in '
                     "the colour of their timeline. Frames chosen at ID switches, misses and false tracks first.</p>")
    for va, thumbs in content.gallery:
        parts.append(f'<h3>Video {va.video.id} {escape(va.video.name)}</h3><div class="frames">')
        for th in thumbs:
            caption = f"frame {th.frame}" + (f" · {th.why}" if th.why else "")
            if th.missing_file:
                caption += f" · image not readable: {th.missing_file}"
            parts.append(f'<figure><img src="{th.data_uri}" alt="{escape(caption)}">'
                         f'<figcaption class="{"bad" if th.missing_file else ""}">{escape(caption)}</figcaption>'
                         "</figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _metrics_json(metrics: dict) -> str:
    text = json.dumps(metrics, sort_keys=False)
    return text.replace("<", "\\u003c")  # a category name cannot close the <script> element


def render_report(content: ReportContent) -> str:
    """The complete page."""
    body = "".join([
        _header(content), _ap_section(content.metrics), _tracking_section(content.metrics),
        _category_section(content), _pr_section(content), _ap_errors_section(content), _video_section(content),
        _errors_section(content),
        _gallery_section(content)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>SPVIS evaluation report</title><script>{ERROR_CATCHER}</script><style>{CSS}</style></head>"
            f"<body>{body}"
            f'<script type="application/json" id="metrics-json">{_metrics_json(content.metrics)}</script>'
            f"<script>{SORTER}</script></body></html>\n")
