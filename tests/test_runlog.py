"""The run folder: config round-trip, metrics log, resume truncation, curves image."""

import numpy as np
from PIL import Image

from trainer.runlog import RunDir


def test_config_metrics_summary_and_curves(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config({"kind": "sam2", "lr": 1e-5, "freeze": ("image_encoder",), "path": tmp_path})
    assert run.read_config()["freeze"] == ["image_encoder"]
    for step in range(1, 6):
        run.log({"step": step, "loss": 1.0 / step, "lr": np.float32(1e-5)})
    run.log({"step": 5, "miou_box": 0.5})
    assert len(run.read_metrics()) == 6 and isinstance(run.read_metrics()[0]["lr"], float)
    run.truncate_metrics(after_step=3)
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    path = run.plot_curves()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 300
    run.write_summary({"metrics": {"after": {"miou_box": np.float64(0.7)}}})
    assert '"miou_box": 0.7' in run.summary_path.read_text()
