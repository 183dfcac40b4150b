"""Fixtures several test files share."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Multi-threaded CPU kernels sum in a varying order (two identical runs differ by ~1e-6); one thread is exact."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def private_check_cache(tmp_path_factory):
    """The data check's verdict cache in a folder of this test session, not the user's ~/.cache."""
    import os

    os.environ["SEGKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("segkit-cache"))
