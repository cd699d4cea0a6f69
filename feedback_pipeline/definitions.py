"""The Dagster code location: everything `assets/` and `sensors/` define, with the storage resources."""

from __future__ import annotations

import dagster as dg

import assets
import sensors
from assets.resources import storage_resources

defs = dg.Definitions.merge(
    dg.load_definitions_from_package_module(assets),
    dg.load_definitions_from_package_module(sensors),
    dg.Definitions(resources=storage_resources()),
)
