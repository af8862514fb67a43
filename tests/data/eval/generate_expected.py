"""Regenerate the TrackEval fixtures in this folder (needs `pip install trackeval==1.3.0`; not run by the tests).

Usage: python tests/data/eval/generate_expected.py   (from the repository root, with trackeval importable)
Writes <case>_gt.json, <case>_results.json and <case>_trackeval.json = TrackEval's YouTubeVIS
cls_comb_cls_av / cls_comb_det_av summaries at score thresholds 0.0 and 0.5 (computed on a copy of
the results with lower-scored predictions removed and empty masks set to null).
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # tests/

from trackeval_oracle import run  # noqa: E402

from spvis.evaluation.synthetic import SyntheticSpec, make_case  # noqa: E402
from test_eval_ap_oracle import _blob_case  # noqa: E402


def main() -> None:
    gt_boxes, res_boxes = make_case(SyntheticSpec(num_videos=6, num_frames=8, height=120, width=160, num_classes=3,
                                                  gt_tracks_per_video=3, results_per_video=10, seed=0))
    gt_boxes["annotations"][1]["iscrowd"] = 1  # crowd GT is ordinary GT for TrackEval
    gt_boxes["categories"].append({"id": 4, "name": "class4", "supercategory": "object"})  # class with no GT
    cases = {"blobs": _blob_case(1), "boxes": (gt_boxes, res_boxes)}
    for name, (gt, results) in cases.items():
        (HERE / f"{name}_gt.json").write_text(json.dumps(gt))
        (HERE / f"{name}_results.json").write_text(json.dumps(results))
        expected = {str(thr): run(gt, results, thr) for thr in (0.0, 0.5)}
        (HERE / f"{name}_trackeval.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
