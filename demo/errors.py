"""Turn the kit's one-line errors into Gradio error popups, so a bad upload or model never takes the app down.

Visitors see no server path: messages go through hub_cards.public.scrub (the log keeps the full text).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from typing import Any, Callable, Iterator

import gradio as gr

from demo.images import UploadError
from hub_cards.public import scrub
from trainer.checkpoint import CheckpointError
from trainer.precision import PrecisionError

USER_ERRORS = (UploadError, CheckpointError, PrecisionError, ValueError, FileNotFoundError)
log = logging.getLogger("segkit.demo")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expected problems become gr.Error(message); anything else is logged and shown as a one-line error too.
    Generator handlers (progress updates) are wrapped so errors raised while iterating are turned the same way."""

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with _as_gradio_error(fn.__name__):
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _as_gradio_error(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _as_gradio_error(name: str) -> Iterator[None]:
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as err:
        raise gr.Error(scrub(str(err)), print_exception=False) from None
    except Exception as err:  # a bug: keep the app up, say what happened, keep the traceback in the log
        log.exception("unexpected error in %s", name)
        raise gr.Error(scrub(f"internal error: {type(err).__name__}: {err}"), print_exception=False) from None
