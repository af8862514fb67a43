"""Export of the online model as graphs (ONNX or TorchScript) and the runtime that runs them in the online pipeline.

``spvis export`` writes two graphs, the per-frame segmenter (normalised, padded image -> class logits, mask logits,
query embeddings, mask features) and the learned tracker's network step (aligned queries, reference, this frame's
queries and mask features -> new track outputs), plus ``manifest.json`` and the config; each graph is checked against
the eager model before anything is written (``exporter``). ``spvis infer --backend onnx|torchscript`` loads such a
folder (``runtime``): the package's own preprocessing, matching, post-processing and result writing run around the
graphs, which replace only the module forwards (``SPVISModel.segment`` and ``ReferringTracker._network``).
"""
