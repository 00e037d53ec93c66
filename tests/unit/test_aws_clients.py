"""The shared botocore session: the same service models as botocore's own loader, loaded for less."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from mlops.adapters.aws import create_session

# every service an adapter creates a client for
SERVICES = ("s3", "dynamodb", "events", "sns")


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1"])
def test_aws_session_loader_loads_what_botocore_loads(service: str, type_name: str) -> None:
    loader = create_session().get_component("data_loader")

    assert loader.load_service_model(service, type_name) == Loader().load_service_model(service, type_name)


def test_aws_session_loader_loads_the_endpoint_data_botocore_loads() -> None:
    loader = create_session().get_component("data_loader")

    assert loader.load_data("endpoints") == Loader().load_data("endpoints")
    assert loader.load_data("partitions") == Loader().load_data("partitions")


def test_aws_session_client_does_not_list_every_service_directory() -> None:
    # GIVEN the session every adapter's clients come from
    session = create_session()
    loader = session.get_component("data_loader")
    listed: list[str] = []
    stock = loader.list_available_services

    def spy(type_name: str) -> Any:
        listed.append(type_name)
        return stock(type_name)

    loader.list_available_services = spy
    # WHEN predict's two clients are created
    session.create_client("dynamodb", region_name="us-east-1")
    session.create_client("s3", region_name="us-east-1")
    # THEN no one walked the ~450 service directories botocore ships to check a name (measured ~20 ms)
    assert listed == []


def test_aws_session_still_refuses_an_unknown_service_by_name() -> None:
    with pytest.raises(UnknownServiceError, match="no-such-service"):
        create_session().create_client("no-such-service", region_name="us-east-1")
