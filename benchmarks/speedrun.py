"""Training speedrun of the segmenter: train for a fixed number of steps, then print the validation learning curve.

Time to accuracy is the measure (as in the CIFAR-10 speedruns): every recipe change is judged by validation
accuracy at a fixed CPU budget. The run trains one stage with ``spvis train`` (checkpoints every
``--eval-every`` steps), then scores every checkpoint on a small fixed validation set with the cheap proxy:
segmenter + MinVIS association online (no learned tracker needed), reporting video AP, HOTA's DetA / AssA, IDF1
and IDSW, and the segmenter's own per-frame mask AP (``frameAP``: its top-k predictions of every frame, scored by
that frame's class probabilities, every frame a one-frame video): per-frame quality apart from association. Training
minutes are the logged step times only (evaluation excluded); take them on an otherwise idle machine.

    python benchmarks/speedrun.py --out output/speedrun/base --iters 1500 --eval-every 250 --seed 0 \
        --config configs/synth/segmenter.yaml --opts SOLVER.LR_SCHEDULER=cosine
    python benchmarks/speedrun.py --out output/speedrun/base --eval-only          # re-score an existing run

The default validation sets are ``datasets/val_101`` and ``val_202`` (16 videos x 60 frames, the target spec):
choices are made on these, never on the report sets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VAL = ["datasets/val_101", "datasets/val_202"]
COLUMNS = ("AP", "frameAP", "DetA", "AssA", "HOTA", "IDF1", "IDSW")


def per_frame_split(gt: dict) -> tuple[dict, dict[tuple[int, int], int]]:
    """The GT with every frame of every video as its own one-frame video (per-frame mask AP by the video AP
    code), and the map (video id, frame) -> one-frame video id."""
    videos, annotations, new_id = [], [], {}
    for v in gt["videos"]:
        for f in range(v["length"]):
            new_id[(v["id"], f)] = len(new_id) + 1
            videos.append({"id": new_id[(v["id"], f)], "length": 1, "height": v["height"], "width": v["width"],
                           "file_names": [v["file_names"][f]]})
    for a in gt["annotations"]:
        for f, seg in enumerate(a["segmentations"]):
            if seg is not None:
                annotations.append({"id": len(annotations) + 1, "video_id": new_id[(a["video_id"], f)],
                                    "category_id": a["category_id"], "iscrowd": a.get("iscrowd", 0),
                                    "segmentations": [seg], "areas": [a["areas"][f]], "bboxes": [None]})
    return {"videos": videos, "annotations": annotations, "categories": gt["categories"]}, new_id


@torch.no_grad()
def segmenter_frame_entries(model, cfg, job, video_id: int) -> list[dict]:
    """The segmenter alone on every frame of a video: its own top-k (TEST.MAX_NUM) query x class predictions per
    frame, scored by the frame's class probabilities, as one-frame result entries (per-frame mask AP of the
    segmenter, independent of any association)."""
    from spvis.data.rle import encode_mask
    from spvis.modeling.postprocess import class_probabilities, masks_to_original, topk_instances

    entries = []
    for f, frame in enumerate(job.source):
        prepared = model.preprocessor(frame)
        images, size = prepared.images, prepared.image_size
        seg = model.segment(images)
        scores, labels, queries = topk_instances(class_probabilities(seg["pred_logits"][0].float()),
                                                 int(cfg.TEST.MAX_NUM))
        masks = masks_to_original(seg["pred_masks"][0, queries].float(), tuple(images.shape[-2:]), size,
                                  frame.shape[:2]).numpy()
        for score, label, mask in zip(scores.tolist(), labels.tolist(), masks):
            entries.append({"video_id": video_id, "frame": f, "category_id": job.category_ids[label]
                            if job.category_ids else label + 1, "score": score, "rle": encode_mask(mask)})
    return entries


def score_weights(weights: str, sets: list[str], overrides: list[str], mode: str = "online",
                  frame_ap: bool = True) -> dict[str, float]:
    """Segmenter + MinVIS (or what ``overrides`` set, e.g. TEST.TRACKER=learned) in ``mode`` on the valid split of
    every set, pooled over the sets (x100; IDSW summed). ``frame_ap`` False skips the segmenter's per-frame AP
    (NaN), which does not depend on the association."""
    from spvis.engine.inference import iter_jobs, load_model, run_video
    from spvis.evaluation import evaluate

    model, cfg = load_model(weights, None, ["TEST.TRACKER=minvis", *overrides])
    gt_all: dict = {"videos": [], "annotations": [], "categories": None}
    entries: list[dict] = []
    frame_preds: list[dict] = []
    offset = 0
    for folder in sets:
        gt = json.loads((Path(folder) / "valid.json").read_text())
        gt_all["categories"] = gt["categories"]
        for job in iter_jobs(str(Path(folder) / "valid.json"), str(Path(folder) / "valid" / "JPEGImages"), cfg):
            result = run_video(model, cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None)
            entries.extend(dict(e, video_id=e["video_id"] + offset) for e in result.entries)
            if frame_ap:
                frame_preds.extend(segmenter_frame_entries(model, cfg, job, job.video_id + offset))
        gt_all["videos"] += [dict(v, id=v["id"] + offset) for v in gt["videos"]]
        gt_all["annotations"] += [dict(a, id=a["id"] + offset * 1000, video_id=a["video_id"] + offset)
                                  for a in gt["annotations"]]
        offset += max(v["id"] for v in gt["videos"]) + 1
    metrics = evaluate(gt_all, entries)
    frame_map = float("nan")
    if frame_ap:
        frame_gt, frame_ids = per_frame_split(gt_all)
        frame_map = 100 * evaluate(frame_gt, [{"video_id": frame_ids[(p["video_id"], p["frame"])],
                                               "category_id": p["category_id"], "score": p["score"],
                                               "segmentations": [p["rle"]]} for p in frame_preds])["AP"]
    pooled = metrics["tracking"]["pooled"]
    return {"AP": 100 * metrics["AP"], "frameAP": frame_map, "DetA": 100 * pooled["DetA"],
            "DetRe": 100 * pooled["DetRe"], "DetPr": 100 * pooled["DetPr"], "AssA": 100 * pooled["AssA"],
            "HOTA": 100 * pooled["HOTA"], "IDF1": 100 * pooled["IDF1"], "IDSW": float(pooled["IDSW"])}


def training_minutes(out: Path) -> dict[int, float]:
    """Cumulative training minutes at every logged iteration (the logged s/iter over each log window)."""
    minutes, total, last = {}, 0.0, 0
    log = out / "metrics.jsonl"
    for line in log.read_text().splitlines() if log.is_file() else []:
        entry = json.loads(line)
        if "time" in entry and "iteration" in entry:
            it = int(entry["iteration"])
            total += float(entry["time"]) * (it - last) / 60.0
            minutes[it], last = total, it
    return minutes


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for path in out.glob("model_*.pth"):
        m = re.match(r"model_(\d+)\.pth$", path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run folder (OUTPUT_DIR); required unless --weights")
    parser.add_argument("--config", default=str(REPO / "configs" / "synth" / "segmenter.yaml"))
    parser.add_argument("--iters", type=int, default=1000, help="training steps (SOLVER.MAX_ITER)")
    parser.add_argument("--eval-every", type=int, default=250, help="checkpoint / learning-curve period")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training and scoring")
    parser.add_argument("--opts", nargs="*", default=[], help="training config overrides KEY=VALUE")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_VAL, help="validation folders (valid.json)")
    parser.add_argument("--test-opts", nargs="*", default=[], help="inference overrides for scoring")
    parser.add_argument("--mode", default="online", choices=("online", "offline"), help="inference mode for scoring")
    parser.add_argument("--eval-only", action="store_true", help="score the checkpoints of an existing run")
    parser.add_argument("--resume", action="store_true", help="continue a stopped run before scoring")
    parser.add_argument("--weights", help="score this .safetensors alone (no training, nothing written)")
    parser.add_argument("--no-frame-ap", action="store_true", help="skip the segmenter's per-frame AP")
    args = parser.parse_args(argv)
    if args.weights:
        torch.set_num_threads(args.threads)
        scores = score_weights(args.weights, args.sets, args.test_opts, args.mode, frame_ap=not args.no_frame_ap)
        print(f"{args.weights} {args.mode} {' '.join(args.test_opts) or 'segmenter + MinVIS'} on {' '.join(args.sets)}")
        print("| " + " | ".join(scores) + " |")
        print("| " + " | ".join(f"{v:.1f}" for v in scores.values()) + " |", flush=True)
        return 0
    out = Path(args.out)
    if not args.eval_only:
        from spvis.engine.launch import train_main

        code = train_main(args.config, [f"OUTPUT_DIR={out}", f"SOLVER.MAX_ITER={args.iters}",
                                        f"SOLVER.CHECKPOINT_PERIOD={args.eval_every}", f"SEED={args.seed}",
                                        f"SOLVER.CPU_THREADS={args.threads}", "DATASETS.TEST=[]", *args.opts],
                          resume=args.resume)
        if code != 0:
            return code
    torch.set_num_threads(args.threads)
    minutes = training_minutes(out)
    rows = []
    print(f"run {out}; validation sets: {' '.join(args.sets)}; {args.mode}, "
          f"{' '.join(args.test_opts) or 'segmenter + MinVIS'}")
    print(f"| step | images | train min | {' | '.join(COLUMNS)} |")
    print("|---:|---:|---:|" + "---:|" * len(COLUMNS))
    from spvis.engine.checkpointing import load_training_checkpoint

    for iteration, path in checkpoints(out):
        data = load_training_checkpoint(path)
        inp = yaml.safe_load(data["config"])["INPUT"]
        frames = int(inp["SAMPLING_FRAME_NUM"]) * int(inp["SAMPLING_NUM_CLIPS"])
        ims = int(data["sampler"]["global_batch"]) * frames * iteration
        with tempfile.TemporaryDirectory() as tmp:
            from spvis.engine.checkpointing import export_training_checkpoint

            weights = export_training_checkpoint(path, Path(tmp) / "w.safetensors")
            started = time.perf_counter()
            scores = score_weights(str(weights), args.sets, args.test_opts, args.mode)
        row = {"step": iteration, "images": ims, "train_min": round(minutes.get(iteration, float("nan")), 2),
               **{k: round(v, 2) for k, v in scores.items()}, "score_s": round(time.perf_counter() - started, 1)}
        rows.append(row)
        print(f"| {iteration} | {ims} | {row['train_min']:.1f} | " + " | ".join(
            f"{scores[c]:.1f}" if c != "IDSW" else f"{scores[c]:.0f}" for c in COLUMNS) + " |", flush=True)
    (out / "speedrun.json").write_text(json.dumps({"seed": args.seed, "opts": args.opts, "sets": args.sets,
                                                   "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
