"""Deep validation and statistics of a video dataset (``spvis data check``).

Loading (``load_video_dataset``) already rejects malformed json, duplicate ids, unknown categories,
wrong ``segmentations`` lengths and mask sizes. This adds what loading skips for speed: every compressed
RLE is parsed (pycocotools decodes a corrupt string to garbage without complaint), every frame file must
exist, and frame headers must match the json's size (first frame of each video, or all with ``all_frames``).
VIPSeg / VSPW datasets are checked by their own modules (``check_segmentation_dataset``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spvis.data.coco import ImageDataset
from spvis.data.frame_check import check_frame_file
from spvis.data.identity_stats import IdentityCounts, TrackBoxes, format_identity_line, video_identity_counts
from spvis.data.png_io import open_image
from spvis.data.rle import rle_bbox
from spvis.data.segmentation import validate_normalized
from spvis.data.video_stats import count_table, video_counts, video_summary_line
from spvis.data.ytvis import VideoDataset
from spvis.errors import DataFormatError

if TYPE_CHECKING:
    from spvis.data.vipseg import PanopticDataset
    from spvis.data.vspw import VSPWDataset


def check_frames(ds: VideoDataset, *, all_frames: bool = False) -> None:
    """DataFormatError naming the json, the video and the field unless every frame file exists with the json's size."""
    for video in ds.videos:
        entry = f"video {video.id}"
        for t in range(video.length):
            path = ds.frame_path(video, t)
            if not path.is_file():
                raise DataFormatError(ds.json_path, f"frame {t} not found: {path}", entry=entry, field="file_names")
            if t == 0 or all_frames:
                try:  # the header and the end marker: a cut or zeroed frame is refused here, not in training
                    h, w = check_frame_file(path)
                except OSError as exc:
                    raise DataFormatError(ds.json_path, f"frame {t} is not a readable image: {path} ({exc})",
                                          entry=entry, field="file_names") from None
                if (h, w) != (video.height, video.width):
                    raise DataFormatError(ds.json_path, f"is {video.height}x{video.width} but frame {t} ({path}) "
                                          f"is {h}x{w}", entry=entry, field="height/width")


def check_images(ds: ImageDataset) -> None:
    """DataFormatError naming the json, the image id and the field unless every COCO image exists with its size."""
    for image in ds.images:
        path = ds.image_path(image)
        entry = f"image {image.id}"
        try:
            with open_image(path) as im:
                w, h = im.size
        except FileNotFoundError:
            raise DataFormatError(ds.json_path, f"image not found: {path}", entry=entry, field="file_name") from None
        except OSError as exc:
            raise DataFormatError(ds.json_path, f"not a readable image: {path} ({exc})", entry=entry,
                                  field="file_name") from None
        if (h, w) != (image.height, image.width):
            raise DataFormatError(ds.json_path, f"is {image.height}x{image.width} but {path} is {h}x{w}",
                                  entry=entry, field="height/width")


def check_masks(ds: VideoDataset) -> None:
    """DataFormatError unless every stored RLE's runs are well formed and cover exactly the video size.

    ``load_video_dataset`` already validates every RLE (the same batch validator); this re-checks a dataset
    built or modified in memory."""
    pending = [(vid, track.id, t, rle) for vid, tracks in ds.tracks_by_video.items() for track in tracks
               for t, rle in enumerate(track.segmentations) if rle is not None]
    _, errors = validate_normalized([rle for *_, rle in pending])
    for (vid, aid, t, _), error in zip(pending, errors):
        if error is not None:
            raise DataFormatError(ds.json_path, f"frame {t}: undecodable RLE: {error}",
                                  entry=f"video {vid}: annotation {aid}", field="segmentations")


def check_segmentation_dataset(ds: PanopticDataset | VSPWDataset, *, read_files: bool = True) -> tuple[dict, list[str]]:
    """(statistics, printable lines) of a VIPSeg ``PanopticDataset`` or a ``VSPWDataset``; with ``read_files``
    every image header is read and every mask decoded (spvis.data.vipseg / vspw say what raises)."""
    from spvis.data.vipseg import (PanopticDataset, check_vipseg_files, format_panoptic_statistics,
                                   panoptic_statistics)
    from spvis.data.vspw import check_vspw_files, format_vspw_statistics

    if isinstance(ds, PanopticDataset):
        stats = check_vipseg_files(ds) if read_files else panoptic_statistics(ds)
        return stats, format_panoptic_statistics(stats, ds.image_root, ds.mask_root)
    stats = check_vspw_files(ds, read_files=read_files)
    return stats, format_vspw_statistics(stats)


def out_of_frame_labels(ds: VideoDataset) -> dict[int, list[bool]]:
    """Per annotation id, frames labelled ``out_of_frame`` in an annotation's ``visibility`` list (``spvis synth``
    writes one; other datasets have none and get an empty dict)."""
    from spvis.utils.json_io import read_json

    labels = {}
    for ann in read_json(ds.json_path).get("annotations") or []:
        visibility = ann.get("visibility") if isinstance(ann, dict) else None
        if isinstance(visibility, list):
            labels[ann.get("id")] = [v == "out_of_frame" for v in visibility]
    return labels


def identity_statistics(ds: VideoDataset) -> dict:
    """Same-class crossings, hidden spans and border re-entries of the ground truth (spvis.data.identity_stats),
    measured from the boxes of the stored masks (and out-of-frame labels where the json has them), so a
    tracker's hard cases can be counted on any dataset."""
    outside = out_of_frame_labels(ds)
    counts = IdentityCounts()
    for video in ds.videos:
        tracks = []
        for track in ds.tracks(video.id):
            boxes = [rle_bbox(rle) if here else None for rle, here in zip(track.segmentations, track.present())]
            tracks.append(TrackBoxes(track.category_id, boxes, outside.get(track.id)))
        counts.add(video_identity_counts(tracks, video.height, video.width))
    return counts.summary()


def dataset_statistics(ds: VideoDataset) -> dict:
    """Counts of videos, frames, tracks, per-category tracks and object-frames, presence and occlusion stats."""
    per_cat_tracks: Counter = Counter()
    per_cat_frames: Counter = Counter()
    presence, gaps, occlusion = [], 0, Counter()
    tracks_total = object_frames = 0
    for tracks in ds.tracks_by_video.values():
        for track in tracks:
            present = track.present()  # (T,) bool
            name = ds.class_names[ds.dataset_to_contiguous_id[track.category_id]]
            tracks_total += 1
            per_cat_tracks[name] += 1
            per_cat_frames[name] += int(present.sum())
            object_frames += int(present.sum())
            presence.append(float(present.mean()) if present.size else 0.0)
            idx = np.flatnonzero(present)
            if idx.size and (idx[-1] - idx[0] + 1) > idx.size:
                gaps += 1  # disappears and comes back within the video
            for level in track.occlusion or []:
                if level is not None:
                    occlusion[str(level)] += 1
    return {
        "json": str(ds.json_path),
        **video_counts([v.length for v in ds.videos], (f"{v.height}x{v.width}" for v in ds.videos)),
        "categories": ds.num_classes,
        "annotated": ds.has_annotations,
        "tracks": tracks_total,
        "object_frames": object_frames,
        "mean_track_presence": round(float(np.mean(presence)), 4) if presence else 0.0,
        "tracks_with_gaps": gaps,
        "per_category": {name: {"tracks": per_cat_tracks[name], "object_frames": per_cat_frames[name]}
                         for name in ds.class_names},
        "occlusion": dict(sorted(occlusion.items())),
        "identity": identity_statistics(ds) if ds.has_annotations else None,
    }


def format_statistics(stats: dict, image_root: Path | None) -> list[str]:
    """Human-readable lines of ``dataset_statistics``."""
    lines = [f"dataset: {stats['json']}" + (f"  (frames under {image_root})" if image_root else ""),
             video_summary_line(stats),
             f"categories: {stats['categories']}"]
    if not stats["annotated"]:
        lines.append("annotations: none (a valid/test split without ground truth)")
        return lines
    lines.append(f"tracks: {stats['tracks']}  object-frames: {stats['object_frames']}  mean presence per track: "
                 f"{stats['mean_track_presence']:.2f}  tracks that disappear and re-appear: {stats['tracks_with_gaps']}")
    lines += count_table("category", ["tracks", "object-frames"],
                         {name: [c["tracks"], c["object_frames"]] for name, c in stats["per_category"].items()})
    if stats["occlusion"]:
        lines.append("occlusion labels (object-frames): " + ", ".join(f"{k} {v}" for k, v in stats["occlusion"].items()))
    if stats.get("identity"):
        lines.append(format_identity_line(stats["identity"]))
    return lines
