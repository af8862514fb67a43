"""Readable tables of a metrics dict: rates x100 with one decimal (as papers write them), counts as integers."""

from __future__ import annotations

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
OCCLUSION_KEYS = ("AP_light", "AP_medium", "AP_heavy", "AR_light", "AR_medium", "AR_heavy")
TRACKING_KEYS = ("HOTA", "DetA", "AssA", "LocA", "OWTA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
                 "IDSW", "Frag", "MT", "PT", "ML")
COUNT_KEYS = {"IDSW", "Frag", "MT", "PT", "ML", "CLR_TP", "CLR_FN", "CLR_FP", "IDTP", "IDFN", "IDFP"}


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key in COUNT_KEYS:
        return str(int(value))
    return "-" if value == -1 else f"{100 * value:.1f}"


def _table(rows: list[tuple[str, dict]], keys: tuple[str, ...]) -> list[str]:
    width = max([len(name) for name, _ in rows] + [8])
    cols = [max(len(k), 6) for k in keys]
    lines = [" " * width + "  " + "  ".join(k.rjust(c) for k, c in zip(keys, cols))]
    for name, values in rows:
        lines.append(name.ljust(width) + "  " + "  ".join(_cell(k, values[k]).rjust(c) for k, c in zip(keys, cols)))
    return lines


def format_metrics(metrics: dict, *, per_category: bool = False) -> str:
    """Multi-line text: AP/AR table, tracking table (class average and pooled), optional per-category rows."""
    ap_keys = AP_KEYS + tuple(k for k in OCCLUSION_KEYS if k in metrics)
    lines = ["Video instance segmentation (YouTube-VIS/OVIS AP, x100)"]
    lines += _table([("all", metrics)], ap_keys)
    tracking = metrics["tracking"]
    thr = metrics.get("info", {}).get("track_score_thr")
    lines += ["", f"Tracking (TrackEval HOTA/CLEAR/Identity, x100; predictions with score >= {thr})"]
    lines += _table([("class avg", tracking["class_avg"]), ("pooled", tracking["pooled"])], TRACKING_KEYS)
    if per_category:
        lines += ["", "Per category"]
        rows = []
        for cid, entry in metrics["per_category"].items():
            values = {"AP": entry["AP"]}
            tracked = tracking.get("per_category", {}).get(cid, {})
            values.update({k: None for k in tracked} if tracked.get("empty") else tracked)
            rows.append((f"{cid} {entry['name']}"[:24], values))
        keys = ("AP",) + (("HOTA", "MOTA", "IDF1", "IDSW") if "per_category" in tracking else ())
        lines += _table(rows, keys)
        lines += _empty_class_note(metrics)
    return "\n".join(lines)


def _empty_class_note(metrics: dict) -> list[str]:
    """Which categories had neither GT nor predictions (shown as -), and the class average without them."""
    per_class = metrics["tracking"].get("per_category", {})
    empty = [cid for cid, values in per_class.items() if values.get("empty")]
    if not empty:
        return []
    names = ", ".join(f"{cid} {metrics['per_category'][cid]['name']}" for cid in empty)
    kept = [values for values in per_class.values() if not values.get("empty")]
    without = "  ".join(f"{key} {100 * sum(v[key] for v in kept) / len(kept):.1f}" for key in ("HOTA", "MOTA", "IDF1")
                        ) if kept else "no category left"
    return [f"- : no GT and no predictions ({names}). The class avg counts them as 0, as TrackEval's class average "
            f"does (cls_comb_cls_av); over the other {len(kept)}: {without}"]
