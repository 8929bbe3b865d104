"""Panels on the Today page, provided by domain apps (appointments, alerts, forms due, ...).

    from ketaflow.web import dashboard

    @dashboard.panel(order=10)
    def open_alerts(request):      # returns HTML (SafeString) or None
        ...

Register in the app's ``AppConfig.ready``. Lower ``order`` shows first.
"""

from collections.abc import Callable

_panels: list[tuple[int, Callable]] = []


def panel(order: int = 50):
    def register(fn: Callable) -> Callable:
        if all(existing is not fn for _, existing in _panels):
            _panels.append((order, fn))
            _panels.sort(key=lambda item: item[0])
        return fn

    return register


def panels_for(request) -> list[str]:
    return [html for _, fn in _panels if (html := fn(request))]
