"""Main-navigation entries provided by domain apps.

    from ketaflow.web import navigation
    navigation.item("Calendar", "scheduling:week", action="schedule.view", order=30, namespace="scheduling")

Call in the app's ``AppConfig.ready``. An entry shows when the user's roles allow ``action``.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    action: str
    order: int
    namespace: str


_items: list[NavItem] = []


def item(label: str, url_name: str, *, action: str, order: int = 50, namespace: str = "") -> None:
    entry = NavItem(label, url_name, action, order, namespace or url_name.split(":")[0])
    if entry not in _items:
        _items.append(entry)
        _items.sort(key=lambda e: e.order)


def items() -> list[NavItem]:
    return list(_items)
