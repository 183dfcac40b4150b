"""Fixtures several test files share, and the browser tests' bookkeeping."""

import os
import shutil
import tempfile

import pytest
import torch

# Under pytest-xdist (pyproject's `-n 2`) each worker computes on one thread, and so do the processes its tests start:
# two 2-thread torch processes on 2 cores spin against each other (a step 8-27x slower), two 1-thread ones do not.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

_GRADIO_UPLOADS = None if os.environ.get("GRADIO_TEMP_DIR") else tempfile.mkdtemp(prefix="segkit-test-gradio-")
if _GRADIO_UPLOADS:
    os.environ["GRADIO_TEMP_DIR"] = _GRADIO_UPLOADS


CHROMIUM_INSTALL = "apt-get install chromium (Debian's; .ci/run installs it)"
_browser_not_run: list[str] = []
_browser_reruns: dict[str, str] = {}  # test -> why its first run failed
# A browser test drives a real page through Gradio's queue on two busy cores, where an event can land late; one that
# fails runs once more (pytest-rerunfailures, as Playwright's own runner retries), and the summary names every test
# that needed it with its first run's error (-q keeps no traceback of a rerun), so a race is seen and fixed rather
# than passed quietly. A real break fails both runs.
BROWSER_RERUNS = 1


# The files whose tests take longest (`--durations=0`, 2026-12-05: 768, 250, 53, 40, 34, 29, 21, 20 s), first: xdist
# hands out whole files (--dist loadfile) in collection order (pyproject's --no-loadscope-reorder keeps this one), so
# a long file started last would run alone at the end while the other worker idles.
LONGEST_FIRST = ("test_sam2_learning.py", "test_app_finetune.py", "test_video_train.py", "test_federated_deployment.py",
                 "test_federated.py", "test_browser_decode.py", "test_browser_app.py", "test_sam2_ddp.py")


def pytest_collection_modifyitems(config, items):
    """Longest files first (above); browser tests (marker `browser`) drive Debian's chromium: without it they skip,
    with one reason, here."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    browser = [item for item in items if "browser" in item.keywords]
    if shutil.which("chromium") is None:
        skip = pytest.mark.skip(reason=f"Debian chromium is not installed: {CHROMIUM_INSTALL}")
        for item in browser:
            item.add_marker(skip)
    for item in browser:
        item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS))


def pytest_runtest_logreport(report):
    if report.skipped and "browser" in report.keywords:
        _browser_not_run.append(report.nodeid)
    if report.outcome == "rerun" and "browser" in report.keywords:
        _browser_reruns.setdefault(report.nodeid, first_error(report))


def first_error(report, limit: int = 400) -> str:
    """A failed report's exception and message on one line, as pytest's short summary takes it (the report's
    reprcrash), at most `limit` characters."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = " ".join((crash.message if crash else str(report.longrepr)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def pytest_sessionfinish(session, exitstatus):
    """CI installs chromium, so a browser test that skipped there is a failure of the run, not a pass."""
    if _browser_not_run and os.environ.get("CI") == "true" and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """One line after all the others (the outermost wrapper), so skipped or rerun browser tests are not lost among
    -ra's."""
    yield
    if _browser_reruns:
        terminalreporter.write_line(f"browser: {len(_browser_reruns)} browser test(s) failed once and were run again "
                                    f"(a race to fix): {', '.join(sorted(_browser_reruns))}", yellow=True, bold=True)
        for nodeid, error in sorted(_browser_reruns.items()):
            terminalreporter.write_line(f"browser:   {nodeid} first failed with: {error}", yellow=True)
    if _browser_not_run:
        ci = " — a failure under CI=true" if os.environ.get("CI") == "true" else ""
        terminalreporter.write_line(f"browser: {len(_browser_not_run)} browser test(s) did not run{ci} "
                                    f"(install chromium: {CHROMIUM_INSTALL})", yellow=True, bold=True)


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
    os.environ["SEGKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("segkit-cache"))


@pytest.fixture(autouse=True, scope="session")
def private_gradio_uploads():
    """Gradio's upload folder of this test session (set at import, before gradio reads it): an app shutting down
    deletes the uploads it made, which in the shared default folder (/tmp/gradio) can be another test run's."""
    yield
    if _GRADIO_UPLOADS:  # only the folder made here: a GRADIO_TEMP_DIR the caller set is theirs
        shutil.rmtree(_GRADIO_UPLOADS, ignore_errors=True)
