"""Readable tables of a metrics dict: rates x100 with one decimal (as papers write them), counts as integers."""

from __future__ import annotations

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
OCCLUSION_KEYS = ("AP_light", "AP_medium", "AP_heavy", "AR_light", "AR_medium", "AR_heavy")
TRACKING_KEYS = ("HOTA", "DetA", "AssA", "LocA", "OWTA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
                 "IDSW", "Frag", "MT", "PT", "ML")
COUNT_KEYS = {"IDSW", "Frag", "MT", "PT", "ML", "CLR_TP", "CLR_FN", "CLR_FP", "IDTP", "IDFN", "IDFP"}


def _cell(key: str, value: float) -> str:
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
            values.update(tracking.get("per_category", {}).get(cid, {}))
            rows.append((f"{cid} {entry['name']}"[:24], values))
        keys = ("AP",) + (("HOTA", "MOTA", "IDF1", "IDSW") if "per_category" in tracking else ())
        lines += _table(rows, keys)
    return "\n".join(lines)
