"""Fixtures several test files share."""

import os
import shutil
import tempfile

import pytest
import torch

_GRADIO_UPLOADS = None if os.environ.get("GRADIO_TEMP_DIR") else tempfile.mkdtemp(prefix="segkit-test-gradio-")
if _GRADIO_UPLOADS:
    os.environ["GRADIO_TEMP_DIR"] = _GRADIO_UPLOADS


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



@pytest.fixture(autouse=True, scope="session")
def private_gradio_uploads():
    """Gradio's upload folder of this test session (set at import, before gradio reads it): an app shutting down
    deletes the uploads it made, which in the shared default folder (/tmp/gradio) can be another test run's."""
    yield
    if _GRADIO_UPLOADS:  # only the folder made here: a GRADIO_TEMP_DIR the caller set is theirs
        shutil.rmtree(_GRADIO_UPLOADS, ignore_errors=True)
