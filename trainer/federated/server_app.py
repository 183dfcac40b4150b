"""The Flower ServerApp: `run_federation` on the Grid Flower hands it (simulation or a SuperLink).

The simulation builds it with the run's options (`make_server_app(cfg, ...)`); `flwr run` loads the module-level
`app`, which reads them from the Flower run config (pyproject.toml's [tool.flwr.app.config] + --run-config).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from trainer.federated.config import FederatedConfig
from trainer.federated.server import run_federation


def make_server_app(cfg: FederatedConfig | None = None, model: torch.nn.Module | None = None,
                    dataset: dict[str, Any] | None = None) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_cfg = cfg if cfg is not None else FederatedConfig.from_run_config(dict(context.run_config))
        run_cfg.out = run_cfg.out or f"runs/federated-{time.strftime('%Y%m%d-%H%M%S')}"
        run_federation(grid, run_cfg, model, dataset)

    return app


app = make_server_app()  # `flwr run` / SuperLink: [tool.flwr.app.components] serverapp
