"""The SAM2 model every SAM2-based trainer, the Hub cards and the demo share: sam2's configs (configs.py), the
architecture's spec (spec.py), build / load / predictors (model.py), the image-encoder forward (forward.py), the
point decoder (point_decoder.py), the fast automatic mask generator (automatic.py), transformers' format
(hf_format.py), and the model options of every SAM2-based trainer's config (options.py). It imports no trainer."""
