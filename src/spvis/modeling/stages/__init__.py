"""Training stages: ``<stage>_stage`` holds the stage's loss (``SegmenterCriterion``, ``TrackerCriterion``,
``RefinerCriterion``); ``stage_criterion.build_stage_criterion(cfg)`` builds the one of ``cfg.STAGE``."""
