"""The training engine every trainer stands on, knowing no model (as detectron2's engine/ knows none): the loop
(loop.py), a run's session (session.py), step sampling and seeds (sampling.py), the bounded feature cache
(feature_cache.py), host memory returned when freed (memory.py), the options every loop shares (options.py), and one summary.json schema and report (summary.py).
A trainer (sam2_ft, semantic, video, federated) subclasses `loop.Trainer` with its objective and batches."""
