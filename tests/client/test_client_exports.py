"""The public surface: complete, sorted, presented as rtrelay.client; imports never circular."""

from __future__ import annotations

import inspect

import rtrelay.client as client


def test_all_is_sorted_constants_first() -> None:
    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert client.__all__ == sorted(client.__all__, key=key)


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    public = {name for name in vars(client) if not name.startswith("_")}
    modules = {name for name, value in vars(client).items() if inspect.ismodule(value)}
    assert set(client.__all__) == public - modules - {"annotations", "inspect"}


def test_public_classes_and_functions_name_the_package() -> None:
    for name in client.__all__:
        value = getattr(client, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert value.__module__ == "rtrelay.client", name
