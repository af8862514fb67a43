"""Every configuration key of SPVIS, declared once with its default and help.

Sections follow detectron2's names so official configs read familiarly: MODEL (segmenter, tracker,
refiner, losses), INPUT (clip sampling and augmentation), DATASETS, DATALOADER, SOLVER, TEST.
Each area owns its section; add a key here (with help) before reading it anywhere.
"""

from __future__ import annotations

from spvis.config.node import Key

SCHEMA: dict = {
    "MODEL": {
        "DEVICE": Key("auto", "cpu, cuda, cuda:N, or auto (cuda when available)"),
        "WEIGHTS": Key("", "weights to initialise from (our safetensors checkpoint); empty = random init"),
        "FROZEN_CACHE_DIR": Key("", "tracker/refiner stages: cache the frozen segmenter's per-frame outputs in this "
                                    "folder (keyed by input pixels and segmenter weights; empty = off). Pays off "
                                    "with a fixed train scale and no flip, where frames repeat"),
        "NUM_CLASSES": Key(40, "number of object categories K (the class head has K+1 outputs)", positive=True, high=100_000),
        "CLASS_NAMES": Key([], "names of the K classes (overlays, results, model cards); empty = the builtin "
                               "dataset with K classes, else 'class <k>'", elem=str),
        "PIXEL_MEAN": Key([123.675, 116.28, 103.53], "per-channel mean, RGB, 0-255 scale", length=3),
        "PIXEL_STD": Key([58.395, 57.12, 57.375], "per-channel std, RGB, 0-255 scale", positive=True, length=3),
        "SIZE_DIVISIBILITY": Key(32, "inputs are zero-padded to a multiple of this", positive=True),
        "BACKBONE": {
            "NAME": Key("resnet", "resnet | swin | mobilenet_v2 (torchvision's, frozen BN) | tiny | timm:<model> "
                                  "(any timm model through features_only, e.g. timm:resnet18; needs spvis[timm])",
                        choices=("resnet", "swin", "mobilenet_v2", "tiny", "timm:*")),
            "DEPTH": Key(50, "ResNet depth (18, 34, 50, 101)", positive=True, high=1_000),
            "RES2_OUT_CHANNELS": Key(256, "ResNet res2 output channels (64 for R18/R34)", positive=True, high=8_192),
            "STEM_OUT_CHANNELS": Key(64, "ResNet stem output channels", positive=True, high=8_192),
            "FREEZE_AT": Key(0, "freeze the stem (1) and the first N-1 stages; 0 = nothing frozen"),
            "NORM": Key("FrozenBN", "ResNet norm: FrozenBN | BN | GN"),
            "STRIDE_IN_1X1": Key(False, "detectron2 ResNet stride rule (False = torchvision-style, stride in 3x3)"),
            "OUT_FEATURES": Key(["res2", "res3", "res4", "res5"], "backbone levels handed to the pixel decoder (tiny "
                                                                  "backbone: also res1, stride 2)"),
            "WIDTH": Key(32, "tiny backbone: channels of the first stage (doubled per stage)", positive=True, high=8_192),
            "PRETRAINED": Key("", "local file with backbone weights (.pkl detectron2, .pth, .safetensors)"),
            "SWIN": {
                "EMBED_DIM": Key(96, "Swin embedding dim (T/S 96, B 128, L 192)", positive=True, high=8_192),
                "DEPTHS": Key([2, 2, 6, 2], "Swin blocks per stage", positive=True, high=256),
                "NUM_HEADS": Key([3, 6, 12, 24], "Swin heads per stage", positive=True, high=1_024),
                "WINDOW_SIZE": Key(7, "Swin window size", positive=True),
                "MLP_RATIO": Key(4.0, "Swin MLP ratio", positive=True),
                "DROP_PATH_RATE": Key(0.3, "Swin stochastic depth"),
                "PATCH_SIZE": Key(4, "Swin patch size", positive=True),
                "PRETRAIN_IMG_SIZE": Key(224, "Swin pretraining image size", positive=True),
            },
        },
        "PIXEL_DECODER": {
            "CONV_DIM": Key(256, "channels of the pixel decoder maps", positive=True, high=8_192),
            "MASK_DIM": Key(256, "channels of mask_features", positive=True, high=8_192),
            "NORM": Key("GN", "norm of the lateral/output convs"),
            "IN_FEATURES": Key(["res2", "res3", "res4", "res5"], "backbone levels used"),
            "DEFORMABLE_IN_FEATURES": Key(["res3", "res4", "res5"], "levels fed to the deformable encoder"),
            "ENC_LAYERS": Key(6, "deformable encoder layers", high=256),
            "ENC_FFN": Key(1024, "deformable encoder FFN width (hard-coded 1024 in Mask2Former)", positive=True, high=65_536),
            "NHEADS": Key(8, "deformable attention heads", positive=True, high=1_024),
            "NPOINTS": Key(4, "deformable attention sampling points per head and level", positive=True, high=256),
            "COMMON_STRIDE": Key(4, "stride of mask_features", positive=True),
        },
        "DECODER": {
            "HIDDEN_DIM": Key(256, "query dimension C", positive=True, high=8_192),
            "NUM_QUERIES": Key(100, "object queries Q", positive=True, high=100_000),
            "NHEADS": Key(8, "attention heads", positive=True, high=1_024),
            "DIM_FEEDFORWARD": Key(2048, "FFN width", positive=True, high=65_536),
            "DEC_LAYERS": Key(9, "real masked-attention layers (official DEC_LAYERS 10 = 9 layers + the query prediction)", high=256),
            "PRE_NORM": Key(False, "pre-norm layers (official: False)"),
            "ENFORCE_INPUT_PROJ": Key(False, "1x1 input projections even when dims match"),
            "REID_BRANCH": Key(False, "DVIS++ reid embedding head (trackers then run at 2C)"),
            "REID_HIDDEN_DIM": Key(256, "DVIS++ reid_embed MLP hidden width", positive=True, high=8_192),
            "NUM_REID_HEAD_LAYERS": Key(3, "DVIS++ reid_embed MLP layers", positive=True, high=256),
        },
        "TRACKER": {
            "ENABLED": Key(True, "build the tracker"),
            "DECODER_LAYERS": Key(6, "referring tracker layers", high=256),
            "ALIGNMENT": Key("dvis", "initial alignment of the current queries to the slots: dvis (the official "
                                     "gather quirk, needed to reproduce official weights) | hungarian (the "
                                     "optimal assignment)", choices=("dvis", "hungarian")),
            "ALIGN_MASK_WEIGHT": Key(0.0, "weight of 1 - IoU(slot's last segmenter mask, query mask) added to the "
                                          "alignment's 1 - cosine at inference: look-alike objects have near-equal "
                                          "embeddings and swap slots without it (0 = off, as DVIS)", low=0.0),
            "ALIGN_MOTION": Key(False, "with ALIGN_MASK_WEIGHT > 0 (or TEST.MINVIS_MASK_WEIGHT): move each slot's "
                                       "remembered mask by its centre's velocity before the overlap (look-alikes "
                                       "that cross keep going their way)"),
            "NOISE_MODE": Key("wa", "DVIS++ denoising of the layer-0 identity: none | wa | rs | cc"),
            "NOISE_RATIO": Key(0.5, "probability of noising a frame during training"),
            "NOISE_WARMUP": Key(0.5, "fraction of SOLVER.MAX_ITER over which the noising probability ramps "
                                     "linearly from 0 to NOISE_RATIO (0 = full noise from the first step)"),
            "GUIDED_MATCHING": Key(0.5, "fraction of SOLVER.MAX_ITER in which ground truth is assigned to slots "
                                        "from the frozen segmenter's predictions in slot order (DVIS); afterwards "
                                        "from the tracker's own outputs"),
            "PGT": {
                "MEMORY": Key(False, "track memory: FIFO + gated stable embedding"),
                "MEMORY_SIZE": Key(10, "FIFO length per track", positive=True),
                "MEMORY_SCORE_THR": Key(0.5, "visible = class score above this and a non-empty mask (memory update, misses)"),
                "MEMORY_RATE": Key(0.15, "stable embedding EMA rate at full confidence (scaled by the class score)"),
                "MEMORY_SIM_GATE": Key(0.5, "no memory update when cos(query, stable embedding) is below this", low=-1),
                "PROGRESSIVE_REF": Key(False, "gated reference r = g*q_prev + (1-g)*m"),
                "CLIP_ASSOCIATION": Key(False, "clip-wise association with filtering and rejection"),
                "CLIP_LEN": Key(5, "frames per clip for association", positive=True),
                "ASSOC_SIM_THR": Key(0.5, "reject associations with similarity below this", low=-1),
                "LIFECYCLE": Key(False, "birth / sleep / re-identification / death of tracks"),
                "BIRTH_SCORE_THR": Key(0.5, "a new track starts from a query above this score"),
                "SLEEP_FRAMES": Key(3, "frames missing before a track sleeps"),
                "KILL_FRAMES": Key(60, "frames missing before a sleeping track dies"),
                "REID_SIM_THR": Key(0.6, "cosine similarity to revive a sleeping track", low=-1),
                "DET_SCORE_THR": Key(0.3, "TEST.TRACKER pgt: a segmenter query is a detection from this class score"),
                "DEDUP_IOU": Key(0.7, "TEST.TRACKER pgt: a detection overlapping a higher-scoring one by this mask "
                                      "IoU is a duplicate (1 = keep all)"),
                "IOU_WEIGHT": Key(1.0, "TEST.TRACKER pgt: weight of 1 - IoU(propagated track mask, query mask) "
                                       "beside 1 - cosine in the association cost"),
                "APPEARANCE": Key("query", "TEST.TRACKER pgt: appearance of a detection: query (its decoder "
                                           "embedding) | pooled (mask features averaged in its mask)",
                                  choices=("query", "pooled")),
                "APPEARANCE_WEIGHT": Key(1.0, "TEST.TRACKER pgt: weight of 1 - cosine(track memory, detection "
                                              "appearance) in the association cost"),
                "MOTION": Key(True, "TEST.TRACKER pgt: propagate each track's mask and centre by its velocity"),
                "REID_RADIUS": Key(0.25, "TEST.TRACKER pgt: a sleeping track is re-identified within this "
                                         "fraction of the frame diagonal of its predicted position"),
            },
            "SIM": Key(False, "Spatial Interaction Module in the tracker layers"),
            "RCP": Key(False, "causal Refinement Compensator after the tracker layers"),
            "SIM_DILATION": Key(2, "SIM: the guide mask is dilated by this radius (feature pixels)"),
            "SIM_FEATURE_STRIDE": Key(2, "SIM: mask features are average-pooled by this factor before attention", positive=True),
            "RCP_ALPHA_INIT": Key(0.05, "RCP: initial residual scale alpha (near 0 = near identity)"),
            "RCP_MEMORY_SIZE": Key(10, "causal RCP: FIFO length of recent track outputs", positive=True),
        },
        "REFINER": {
            "ENABLED": Key(False, "build the temporal refiner (offline mode)"),
            "DECODER_LAYERS": Key(6, "temporal refiner layers", high=256),
            "SIM": Key(False, "Spatial Interaction Module in the refiner"),
            "RCP": Key(False, "Refinement Compensator under the refiner"),
            "SIM_DILATION": Key(2, "SIM: the guide mask is dilated by this radius (feature pixels)"),
            "SIM_FEATURE_STRIDE": Key(2, "SIM: mask features are average-pooled by this factor before attention", positive=True),
            "RCP_ALPHA_INIT": Key(0.05, "RCP: initial residual scale alpha (near 0 = near identity)"),
            "GUIDED_MATCHING": Key(0.5, "fraction of SOLVER.MAX_ITER in which the refiner's ground truth is "
                                        "matched on the frozen tracker's outputs (DVIS); afterwards on its own"),
        },
        "LOSS": {
            "CLASS_WEIGHT": Key(2.0, "classification loss weight"),
            "MASK_WEIGHT": Key(5.0, "mask BCE weight"),
            "DICE_WEIGHT": Key(5.0, "mask dice weight"),
            "NO_OBJECT_WEIGHT": Key(0.1, "CE weight of the no-object class"),
            "TRAIN_NUM_POINTS": Key(12544, "points sampled per mask (112^2)", positive=True),
            "OVERSAMPLE_RATIO": Key(3.0, "PointRend oversampling"),
            "IMPORTANCE_SAMPLE_RATIO": Key(0.75, "fraction of points from the most uncertain"),
            "DEEP_SUPERVISION": Key(True, "losses on every auxiliary output"),
            "CLIP_MATCHING": Key(False, "segmenter stage: match each clip's queries to its instances once for all "
                                        "its frames (a query keeps its object across the clip), not per frame"),
            "QUERY_CONTRAST_WEIGHT": Key(0.0, "segmenter stage, clips of T > 1 frames: InfoNCE weight on the query "
                                              "embeddings MinVIS matches (an instance's query in one frame against "
                                              "all queries of another; 0 = off)", low=0.0),
            "REID_WEIGHT": Key(2.0, "DVIS++ reference contrastive loss weight (0 = off)"),
            "PRESERVE_WEIGHT": Key(1.0, "RCP preservation loss weight"),
            "CONTRAST_WEIGHT": Key(1.0, "RCP contrastive loss weight"),
        },
    },
    "INPUT": {
        "FORMAT": Key("RGB", "channel order fed to the model"),
        "SAMPLING_FRAME_NUM": Key(1, "frames per training clip", positive=True),
        "SAMPLING_FRAME_RANGE": Key(2, "sampling range around the reference frame"),
        "SAMPLING_NUM_CLIPS": Key(1, "consecutive clips per sample (tracker training with memory)", positive=True),
        "REVERSE_AGU": Key(False, "reverse the clip with probability 0.5"),
        "MIN_SIZE_TRAIN": Key([240, 360, 480], "shortest-edge choices, one per clip", positive=True, high=16_384),
        "MAX_SIZE_TRAIN": Key(768, "longest-edge limit in training", positive=True, high=16_384),
        "MIN_SIZE_TEST": Key(360, "shortest edge at test time", positive=True, high=16_384),
        "MAX_SIZE_TEST": Key(1333, "longest edge at test time", positive=True, high=16_384),
        "RANDOM_FLIP": Key(True, "horizontal flip per clip"),
        "CROP": {
            "ENABLED": Key(False, "random crop per clip (probability 0.5)"),
            "SIZE": Key([384, 600], "absolute_range crop size", positive=True, length=2),
            "PRE_RESIZE": Key([400, 500, 600], "shortest-edge choices applied before the crop", positive=True),
        },
        "PSEUDO_VIDEO_ROTATION": Key(15.0, "max rotation (degrees) of COCO pseudo-videos"),
    },
    "DATASETS": {
        "TRAIN": Key([], "registered dataset names for training", elem=str),
        "TEST": Key([], "registered dataset names for evaluation", elem=str),
        "RATIO": Key([], "sampling weight per training dataset (empty = equal)", elem=(float, int)),
        "REGISTER": Key([], "user datasets: list of {name, json, image_root}", elem=dict),
    },
    "DATALOADER": {
        "NUM_WORKERS": Key(2, "data loading worker processes"),
    },
    "SOLVER": {
        "BASE_LR": Key(1e-4, "AdamW learning rate"),
        "WEIGHT_DECAY": Key(0.05, "AdamW weight decay"),
        "WEIGHT_DECAY_NORM": Key(0.0, "weight decay of norm layers"),
        "WEIGHT_DECAY_EMBED": Key(0.0, "weight decay of embeddings"),
        "BACKBONE_MULTIPLIER": Key(0.1, "backbone learning-rate multiplier"),
        "MAX_ITER": Key(1000, "optimiser steps"),
        "LR_SCHEDULER": Key("step", "step | poly | cosine (half a cosine from BASE_LR to 0 at MAX_ITER: a schedule "
                                    "for a fixed budget)", choices=("step", "poly", "cosine")),
        "STEPS": Key([700], "iterations at which the LR is multiplied by GAMMA"),
        "GAMMA": Key(0.1, "step schedule factor"),
        "POLY_POWER": Key(0.9, "poly schedule power"),
        "WARMUP_ITERS": Key(10, "linear warm-up iterations"),
        "WARMUP_FACTOR": Key(1.0, "warm-up start factor"),
        "CLIP_GRAD_NORM": Key(0.01, "full-model gradient-norm clip (0 = off)"),
        "IMS_PER_BATCH": Key(8, "global batch: clips per optimiser step over all processes", positive=True),
        "CLIPS_PER_DEVICE": Key(1, "clips per forward on one process; the rest is gradient accumulation", positive=True),
        "AMP": Key(True, "mixed precision on CUDA (ignored on CPU)"),
        "EMA_DECAY": Key(0.0, "exponential moving average of the trained weights with this decay (0 = off); the "
                              "average is what evaluation, model_final and exports use", low=0.0),
        "CHECKPOINT_PERIOD": Key(500, "iterations between checkpoints", positive=True),
        "AMP_DTYPE": Key("float16", "AMP dtype on CUDA: float16 (with GradScaler) | bfloat16",
                         choices=("float16", "bfloat16")),
        "LOG_PERIOD": Key(20, "iterations between progress lines / metrics.jsonl entries", positive=True),
        "TENSORBOARD": Key(False, "also write TensorBoard event files to OUTPUT_DIR (needs tensorboard)"),
        "CPU_THREADS": Key(0, "torch threads per process on CPU (0 = all cores / local processes); 1 is far "
                              "faster on an oversubscribed machine"),
        "KEEP_CHECKPOINTS": Key(0, "training checkpoints kept in OUTPUT_DIR, newest first (0 = keep all)"),
        "FIND_UNUSED_PARAMETERS": Key(False, "DDP: allow trainable parameters that get no gradient in a step "
                                             "(costs an extra graph traversal)"),
    },
    "TEST": {
        "MODE": Key("online", "online | offline", choices=("online", "offline")),
        "TRACKER": Key("learned", "online association: learned (the trained DVIS tracker) | minvis (segmenter + "
                                  "Hungarian matching of query embeddings between frames, no tracker; the baseline) | "
                                  "pgt (tracks over the segmenter's confident queries: memory, motion, sleep and "
                                  "re-identification; MODEL.TRACKER.PGT)",
                       choices=("learned", "minvis", "pgt")),
        "MAX_NUM": Key(10, "top-k results per video (10 YTVIS, 20 OVIS)", positive=True),
        "WINDOW_SIZE": Key(3, "frames per segmenter batch / refiner mask window", positive=True),
        "EVAL_PERIOD": Key(0, "iterations between evaluations (0 = only at the end)"),
        "TRACK_SCORE_THR": Key(0.5, "tracking metrics count predictions above this score"),
        "MAX_MEMORY_GB": Key(4.0, "offline mode: memory budget for pass 2 mask decoding", positive=True),
        "HALF": Key("", "inference precision: '' (float32) | auto (fp16 on CUDA, bf16 on CPU; what --half sets) | "
                        "bf16 | fp16 (CUDA only)", choices=("", "auto", "bf16", "fp16")),
        "TRACK_NMS_IOU": Key(0.0, "soft-suppress a track whose video mask IoU with a higher-scoring track reaches "
                                  "this (score x (1 - IoU)); 0 = off, as DVIS", low=0.0),
        "SNAP_IOU": Key(0.0, "online learned tracker: a track whose mask overlaps a segmenter query's by this IoU "
                             "(one-to-one) emits that query's class and mask; the tracker keeps the identities "
                             "(0 = off, as DVIS)", low=0.0),
        "EXCLUSIVE_MASKS": Key(False, "VIS results: a pixel that several tracks' masks claim on a frame stays only "
                                      "in the one with the highest score x mask probability (Mask2Former's "
                                      "panoptic rule on the disputed pixels), so masks never overlap. Off: DVIS "
                                      "(overlapping masks). Online: frame scores; offline: the entries' scores"),
        "MINVIS_MASK_WEIGHT": Key(0.0, "TEST.TRACKER minvis: the mask-overlap term of MODEL.TRACKER.ALIGN_MASK_WEIGHT "
                                       "in MinVIS's matching too (0 = MinVIS as published; > 0 is the baseline for "
                                       "the tracker's term)", low=0.0),
        "SNAP_UNMATCHED": Key("keep", "with SNAP_IOU > 0, a track that overlaps no segmenter query on a frame: keep "
                                      "(its own class and mask) | hide (an empty mask on that frame: the segmenter "
                                      "alone draws the frame, the tracker decides identities)",
                              choices=("keep", "hide")),
        "OFFLINE_SCORE": Key("max", "offline class score per track: max (DVIS_offline: element-wise max of the "
                                    "refiner's and the tracker's class probabilities) | refiner (the refiner's "
                                    "alone) | mean (the mean of both) | min (the smaller of both)",
                             choices=("max", "refiner", "mean", "min")),
        "PANOPTIC": {
            "OBJECT_THRESHOLD": Key(0.8, "spvis infer --task vps: a query is a segment when its best class (softmax "
                                         "with no-object) is not no-object and scores above this (DVIS "
                                         "OBJECT_MASK_THRESHOLD)", low=0.0),
            "OVERLAP_THRESHOLD": Key(0.8, "spvis infer --task vps: a segment is dropped when the pixels it wins inside "
                                          "its mask are below this fraction of its mask (DVIS OVERLAP_THRESHOLD)",
                                     low=0.0),
        },
    },
    "OUTPUT_DIR": Key("./output", "where checkpoints, logs and results go"),
    "SEED": Key(0, "random seed", low=None),
    "STAGE": Key("segmenter", "training stage", choices=("segmenter", "tracker", "refiner")),
}
