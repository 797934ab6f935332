"""neumo.detect: score text with a causal LM, detect machine text, and say which mechanism gave it away.

Layers: ``lm`` (scoring models) -> ``stats``/``score`` (one pass, every per-token statistic) ->
``detectors``/``registry`` (one-pass detectors), ``binoculars`` (two models) -> ``explain`` (evidence,
mechanisms) -> ``analyze`` (one text to a ``DetectionResult``), ``evaluate`` (AUROC, TPR, calibration),
``corpus`` (synthetic languages with a known p), ``sampling`` (temperature / power / top-p generation).
"""
