"""A function that logs the way this project's handlers do: a Powertools Logger for its service,
its config copied to the shared `mlops` loggers, and a line from a domain module's logger."""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

domain_log = logging.getLogger("mlops.validation.service")  # registered first, as the handlers' imports do
logger = Logger()  # service from POWERTOOLS_SERVICE_NAME, as each function's environment sets it
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("handler line", marker=event["marker"])
    domain_log.warning("domain line %s", event["marker"])
    time.sleep(float(event.get("sleep", 0)))  # a test's hook: something else happens meanwhile
    return {"ok": True}
