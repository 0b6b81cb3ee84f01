"""Remember, per function, whether NiceGUI must pass arguments to a change handler.

NiceGUI 3.18 answers that question with ``inspect.signature`` for the props, classes and style
collections of every element it creates: about half the time the master spends building the
courts page, on the event loop that also pushes the overlay's scores. A handler's signature does
not change, so the answer is kept per function (weakly: a function that goes away takes its
answer with it). Callables other than functions and bound methods are asked every time.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable
from typing import Any

from nicegui import helpers

__all__ = ["install"]

_ask: Callable[[Callable[..., Any]], bool] = helpers.expects_arguments
_plain: weakref.WeakKeyDictionary[types.FunctionType, bool] = weakref.WeakKeyDictionary()
_bound: weakref.WeakKeyDictionary[types.FunctionType, bool] = weakref.WeakKeyDictionary()


def expects_arguments(func: Callable[..., Any]) -> bool:
    """``nicegui.helpers.expects_arguments``, answered once per function."""
    if isinstance(func, types.MethodType) and isinstance(func.__func__, types.FunctionType):
        answers, key = _bound, func.__func__  # the class's function: one answer for every element
    elif isinstance(func, types.FunctionType):
        answers, key = _plain, func
    else:
        return _ask(func)
    answer = answers.get(key)
    if answer is None:
        answer = answers[key] = _ask(func)
    return answer


def install() -> None:
    """Every NiceGUI module reads ``helpers.expects_arguments`` at call time, so this one swap covers them."""
    helpers.expects_arguments = expects_arguments
