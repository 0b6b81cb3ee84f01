"""NiceGUI's "does this handler take arguments?", answered once per function and always as NiceGUI would."""

from __future__ import annotations

import functools
from typing import Any

from nicegui import helpers
from nicegui.helpers.functions import expects_arguments as asked_every_time

from master.console import handler_signatures


class _Element:
    def no_args(self) -> None: ...

    def takes_event(self, event: Any) -> None: ...

    def defaulted(self, event: Any = None) -> None: ...


def _plain(event: Any) -> None: ...


def test_the_answers_are_nicegui_s_own_and_a_method_is_asked_once_for_every_instance() -> None:
    handlers: list[Any] = [
        _Element().no_args, _Element().takes_event, _Element().defaulted, _plain, lambda: None, lambda e: None,
        lambda *args: None, functools.partial(_plain, 1), functools.partial(_plain),
    ]
    for handler in handlers:
        assert handler_signatures.expects_arguments(handler) == asked_every_time(handler), handler
    first, second = _Element(), _Element()
    handler_signatures.expects_arguments(first.takes_event)
    assert _Element.takes_event in handler_signatures._bound  # one answer for the class's function
    assert handler_signatures.expects_arguments(second.takes_event) is True


def test_install_puts_it_where_every_nicegui_module_looks() -> None:
    handler_signatures.install()
    assert helpers.expects_arguments is handler_signatures.expects_arguments
