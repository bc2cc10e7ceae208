from pydantic import ValidationError as PydanticValidationError
import pytest

from prefect_plugboard import AsyncioConnector, ConnectorSpec
from prefect_plugboard.connector import ConnectorBuilder, ConnectorSocket


def test_string_and_dict_forms_are_the_same_spec() -> None:
    a = ConnectorSpec(source="input.x", target="slow-sleep.x")
    b = ConnectorSpec(
        source={"entity": "input", "descriptor": "x"},
        target=ConnectorSocket(entity="slow-sleep", descriptor="x"),
    )
    assert a == b
    assert a.id == "input.x..slow-sleep.x"
    assert str(a) == "input.x -> slow-sleep.x"


@pytest.mark.parametrize("ref", ["a", "a.b.c", "a.1x", ".x", "a.", "1a.x", "a b.x"])
def test_malformed_references_are_refused_with_the_reference_named(ref: str) -> None:
    with pytest.raises(PydanticValidationError) as info:
        ConnectorSpec(source=ref, target="b.x")
    assert repr(ref) in str(info.value)


def test_builder_passes_its_settings_to_every_connector() -> None:
    builder = AsyncioConnector.builder(maxsize=7)
    assert isinstance(builder, ConnectorBuilder)
    connector = builder.build({"source": "a.x", "target": "b.x"})
    assert isinstance(connector, AsyncioConnector)
    assert connector.maxsize == 7
    assert connector.spec == ConnectorSpec(source="a.x", target="b.x")


def test_connectors_are_bounded_by_default_and_refuse_negative_sizes() -> None:
    assert AsyncioConnector(spec=ConnectorSpec(source="a.x", target="b.x")).maxsize > 0
    with pytest.raises(ValueError, match="maxsize"):
        AsyncioConnector(spec=ConnectorSpec(source="a.x", target="b.x"), maxsize=-1)
