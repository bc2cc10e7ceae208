from pydantic import ValidationError as PydanticValidationError
import pytest

from prefect_plugboard import Resource
from prefect_plugboard.schemas import parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", 0.5),
        ("250m", 0.25),
        ("2", 2.0),
        ("1.5", 1.5),
        ("5k", 5000.0),
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("100M", 100e6),
        (3, 3.0),
        (0.001, 0.001),
    ],
)
def test_quantities_parse_like_kubernetes(text: str | float, expected: float) -> None:
    assert parse_quantity(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["lots", "5q", "-1", "1.2.3", "", True])
def test_bad_quantities_are_refused_with_the_value_named(bad: object) -> None:
    with pytest.raises(ValueError, match="quantity|suffix|number"):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_defaults_ask_for_a_sliver_of_cpu() -> None:
    assert Resource() == Resource(cpu=0.001, gpu=0, memory=0, resources={})
    assert Resource().to_ray_options() == {"num_cpus": 0.001}


def test_strings_and_numbers_map_to_ray_options() -> None:
    resource = Resource(cpu="500m", gpu=1, memory="512Mi", resources={"custom_hardware": 2})
    assert resource.cpu == 0.5
    assert resource.memory == 536870912
    assert resource.to_ray_options() == {
        "num_cpus": 0.5,
        "num_gpus": 1.0,
        "memory": 536870912,
        "resources": {"custom_hardware": 2.0},
    }
    assert resource.to_bundle() == {
        "CPU": 0.5,
        "GPU": 1.0,
        "memory": 536870912.0,
        "custom_hardware": 2.0,
    }


def test_unknown_keys_and_negative_values_are_refused() -> None:
    with pytest.raises(PydanticValidationError, match="cpus"):
        Resource.model_validate({"cpus": 2})
    with pytest.raises(PydanticValidationError, match="negative"):
        Resource(cpu=-1)
