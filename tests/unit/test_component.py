import pickle
import typing as _t

import pytest

from prefect_plugboard import IO, Component, ComponentArgsDict, Resource, Status, ValidationError


class Scale(Component):
    """Multiplies x by a factor."""

    io = IO(inputs=["x"], outputs=["y"])
    resources = Resource(cpu=2)

    def __init__(self, factor: float, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._factor = factor

    async def step(self) -> None:
        self.y = self.x * self._factor


class ScaleWithOffset(Scale):
    io = IO(inputs=["offset"], outputs=["z"])


def test_declared_fields_read_none_until_set() -> None:
    component = Scale(name="s", factor=2)
    assert component.x is None
    assert component.y is None


def test_unknown_attributes_raise_attribute_error() -> None:
    component = Scale(name="s", factor=2)
    with pytest.raises(AttributeError, match="typo"):
        _ = component.typo


def test_io_merges_along_the_class_hierarchy_sorted_by_name_as_in_plugboard() -> None:
    assert ScaleWithOffset.io.inputs == ("offset", "x")  # declared: x, then offset
    assert ScaleWithOffset.io.outputs == ("y", "z")
    component = ScaleWithOffset(name="s", factor=1)
    assert component.io.inputs == ("offset", "x")
    assert component.io is not ScaleWithOffset.io


def test_instances_add_fields_to_their_own_io_only() -> None:
    a, b = Scale(name="a", factor=1), Scale(name="b", factor=1)
    a.io.add_inputs("extra")
    assert a.io.inputs == ("x", "extra")
    assert b.io.inputs == ("x",)
    assert a.extra is None


def test_class_resources_are_the_default_and_the_argument_replaces_them() -> None:
    assert Scale(name="a", factor=1).resources == Resource(cpu=2)
    assert Scale(name="b", factor=1, resources=Resource(cpu="500m")).resources.cpu == 0.5
    assert Scale(name="c", factor=1, resources={"gpu": 1}).resources == Resource(gpu=1)


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a.b", None])
def test_invalid_names_are_refused(name: _t.Any) -> None:
    with pytest.raises(ValidationError, match="name"):
        Scale(name=name, factor=1)


def test_fields_may_not_shadow_component_attributes() -> None:
    with pytest.raises(ValueError, match="clash"):

        class Bad(Component):
            io = IO(inputs=["status"])


def test_a_field_cannot_be_both_input_and_output() -> None:
    with pytest.raises(ValueError, match="both"):
        IO(inputs=["x"], outputs=["x"])


def test_export_names_the_type_and_the_constructor_arguments() -> None:
    component = Scale(name="s", factor=3, initial_values={"x": [1]}, resources={"cpu": "1"})
    exported = component.export()
    assert exported["type"] == f"{__name__}.Scale"
    assert exported["args"] == {
        "factor": 3,
        "name": "s",
        "initial_values": {"x": [1]},
        "resources": {"cpu": "1"},
    }


def test_dict_reports_status_fields_and_exports() -> None:
    class Counter(Component):
        io = IO(inputs=["x"])
        exports = ["count"]

        def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
            super().__init__(**kwargs)
            self.count = 5

    state = Counter(name="c").dict()
    assert state["status"] == Status.CREATED
    assert state["input"] == {"x": None}
    assert state["exports"] == {"count": 5}


def test_components_pickle_without_their_run_logger() -> None:
    component = Scale(name="s", factor=2)
    component._run_logger = component.logger
    restored = pickle.loads(pickle.dumps(component))
    assert restored.name == "s"
    assert restored._factor == 2
    assert restored.__dict__["_run_logger"] is None
