"""20 concurrent gradio_client users against the queued app: every request answered, none failed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

CLIENTS, REQUESTS_EACH = 20, 2


def test_twenty_concurrent_clients_get_no_errors(tmp_path):
    from demo.images import example_paths
    from demo.testing import running_app

    with running_app(tmp_path, with_d2=False) as app:
        def user(i: int, image: str = example_paths()["coins"], requests: int = REQUESTS_EACH) -> list[str]:
            client = Client(app["url"], verbose=False)
            prompts = json.dumps({"points": [[10 + i * 5, 20 + i, 1]]})
            return [client.predict(handle_file(image), prompts, "facebook/sam2.1-hiera-tiny", "fp32", False,
                                   api_name="/segment")[3] for _ in range(requests)]

        with ThreadPoolExecutor(CLIENTS) as pool:
            infos = [info for answers in pool.map(user, range(CLIENTS)) for info in answers]
        # two visitors uploading the same picture of their own: neither learns that the other embedded it
        own = [user(i, app["image"], 1)[0] for i in range(2)]
    assert len(infos) == CLIENTS * REQUESTS_EACH
    assert all(info.startswith("score ") for info in infos)
    assert sum("embed cached" not in info for info in infos) == 1  # a bundled example: one embedding for everyone
    assert all(info.startswith("score ") and "embed cached" not in info for info in own)
