"""Video inference owned by the model (``SPVISModel`` inherits the mixins).

Online: ``state = model.init_state(...)``; ``model.track_frame(state, frame) -> TrackedFrame`` (device tensors, one
host transfer away from numpy: ``TrackedFrame.to_host``). Offline: ``model.init_offline_state``, ``encode_frames``,
``select_tracks``, ``decode_masks``. Video panoptic / semantic: online ``model.init_segmentation_state``,
``parse_frame``; offline ``video_segments``, ``window_features``, ``segment_mask_logits``. The engines
(``spvis.engine.streaming`` / ``offline`` / ``segmentation``) only feed frames and write results.
"""

from spvis.modeling.inference.emission import HostFrame, TrackedFrame
from spvis.modeling.inference.offline import (OfflineInferenceMixin, OfflineSegments, OfflineSelection,
                                              OfflineState)
from spvis.modeling.inference.online import OnlineInferenceMixin
from spvis.modeling.inference.segmentation import (PanopticFrame, SegmentationInferenceMixin, SegmentationState,
                                                   SemanticFrame)
from spvis.modeling.inference.state import OnlineState

__all__ = ["HostFrame", "OfflineInferenceMixin", "OfflineSegments", "OfflineSelection", "OfflineState",
           "OnlineInferenceMixin", "OnlineState", "PanopticFrame", "SegmentationInferenceMixin", "SegmentationState",
           "SemanticFrame", "TrackedFrame"]
