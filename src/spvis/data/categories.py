"""Category lists of the builtin datasets and the COCO -> YTVIS/OVIS class maps.

Facts (ids and names) as published by the YouTube-VIS / OVIS datasets and the COCO->video conversion
maps used by VITA, MinVIS, DVIS and CTVIS (``COCO_TO_YTVIS_2019`` etc.); keys are COCO category ids,
values the target dataset's category ids. Unmapped COCO classes are dropped from pseudo-videos.
"""

from __future__ import annotations

YTVIS_2019_NAMES = [
    "person", "giant_panda", "lizard", "parrot", "skateboard", "sedan", "ape", "dog", "snake", "monkey",
    "hand", "rabbit", "duck", "cat", "cow", "fish", "train", "horse", "turtle", "bear",
    "motorbike", "giraffe", "leopard", "fox", "deer", "owl", "surfboard", "airplane", "truck", "zebra",
    "tiger", "elephant", "snowboard", "boat", "shark", "mouse", "frog", "eagle", "earless_seal", "tennis_racket",
]

YTVIS_2021_NAMES = [
    "airplane", "bear", "bird", "boat", "car", "cat", "cow", "deer", "dog", "duck",
    "earless_seal", "elephant", "fish", "flying_disc", "fox", "frog", "giant_panda", "giraffe", "horse", "leopard",
    "lizard", "monkey", "motorbike", "mouse", "parrot", "person", "rabbit", "shark", "skateboard", "snake",
    "snowboard", "squirrel", "surfboard", "tennis_racket", "tiger", "train", "truck", "turtle", "whale", "zebra",
]

OVIS_NAMES = [
    "Person", "Bird", "Cat", "Dog", "Horse", "Sheep", "Cow", "Elephant", "Bear", "Zebra",
    "Giraffe", "Poultry", "Giant_panda", "Lizard", "Parrot", "Monkey", "Rabbit", "Tiger", "Fish", "Turtle",
    "Bicycle", "Motorcycle", "Airplane", "Boat", "Vehical",
]

# COCO 2017 instance categories in contiguous order (the 80 outputs of a COCO Mask2Former model)
COCO_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]

COCO_TO_YTVIS_2019 = {
    1: 1, 2: 21, 3: 6, 4: 21, 5: 28, 7: 17, 8: 29, 9: 34, 17: 14, 18: 8, 19: 18, 21: 15, 22: 32, 23: 20,
    24: 30, 25: 22, 35: 33, 36: 33, 41: 5, 42: 27, 43: 40,
}
COCO_TO_YTVIS_2021 = {
    1: 26, 2: 23, 3: 5, 4: 23, 5: 1, 7: 36, 8: 37, 9: 4, 16: 3, 17: 6, 18: 9, 19: 19, 21: 7, 22: 12,
    23: 2, 24: 40, 25: 18, 34: 14, 35: 31, 36: 31, 41: 29, 42: 33, 43: 34,
}
COCO_TO_OVIS = {
    1: 1, 2: 21, 3: 25, 4: 22, 5: 23, 6: 25, 8: 25, 9: 24, 17: 3, 18: 4, 19: 5, 20: 6, 21: 7, 22: 8,
    23: 9, 24: 10, 25: 11,
}


def categories_from_names(names: list[str]) -> list[dict]:
    """YTVIS-style category records with ids 1..K in list order."""
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(names)]


CATEGORY_SETS = {
    "ytvis_2019": YTVIS_2019_NAMES,
    "ytvis_2021": YTVIS_2021_NAMES,
    "ytvis_2022": YTVIS_2021_NAMES,  # YTVIS 2022 reuses the 2021 categories
    "ovis": OVIS_NAMES,
}
COCO_MAPS = {"ytvis_2019": COCO_TO_YTVIS_2019, "ytvis_2021": COCO_TO_YTVIS_2021,
             "ytvis_2022": COCO_TO_YTVIS_2021, "ovis": COCO_TO_OVIS}
