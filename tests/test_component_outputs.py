"""Every component declares its outputs where it assigns them (`self.x: Output[str] = ...` in
`__init__`), not as class annotations. The SDK turns a resource class's annotations into output
types on every registration of that class, with no cache (pulumi/_types.py `resource_types` ->
`_types_from_annotations`: `inspect.get_annotations`, a new class, `get_type_hints`), which cost
a render about 2 % for 150 components of outputs no engine reads back."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pulumi
from pulumi import _types

import components


def component_classes() -> list[type[pulumi.ComponentResource]]:
    found = []
    for module in pkgutil.walk_packages(components.__path__, "components."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.name:
                found.append(cls)
    return found


def test_the_sdk_derives_output_types_from_a_component_s_class_annotations() -> None:
    class Annotated(pulumi.ComponentResource):
        address: pulumi.Output[str]

    assert _types.resource_types(Annotated)  # the work the rule below avoids is real


def test_no_component_declares_its_outputs_as_class_annotations() -> None:
    classes = component_classes()
    assert len(classes) >= 8, [c.__name__ for c in classes]
    for cls in classes:
        assert inspect.get_annotations(cls) == {}, cls.__name__
        assert _types.resource_types(cls) == {}, cls.__name__
