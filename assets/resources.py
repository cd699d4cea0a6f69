"""Storage resources. Each location is an `EnvVar` when its variable is set; otherwise it is derived
from `FEEDBACK_HOME` when the run starts (not when the code location loads), so the same code
runs locally, in tests and against object stores."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline.storage import parse_options


def _options(raw: str) -> dict[str, str] | None:
    return parse_options(raw) if raw else None


class LakeResource(dg.ConfigurableResource):
    """The Delta lake root (a local path or an object-store URI)."""

    uri: str = Field(default="", description="Lake URI; empty: $FEEDBACK_HOME/lake at run time")
    storage_options_json: str = Field(default="", description="JSON object of storage options")

    def lake(self) -> Lake:
        home = FeedbackHome.from_env()
        return Lake(self.uri or home.lake_uri, _options(self.storage_options_json) or home.storage_options)


class LandingResource(dg.ConfigurableResource):
    """The landing zone root (a local path or an object-store URI)."""

    uri: str = Field(default="", description="Landing URI; empty: $FEEDBACK_HOME/landing at run time")
    storage_options_json: str = Field(default="", description="JSON object of storage options")

    def landing(self) -> LandingZone:
        home = FeedbackHome.from_env()
        return LandingZone(self.uri or home.landing_uri, _options(self.storage_options_json) or home.storage_options)


def _env(variable: str) -> dg.EnvVar | str:
    return dg.EnvVar(variable) if os.environ.get(variable) else ""


def storage_resources() -> dict[str, dg.ConfigurableResource]:
    """The `lake` and `landing` resources."""
    options = _env("FEEDBACK_STORAGE_OPTIONS")
    return {
        "lake": LakeResource(uri=_env("FEEDBACK_LAKE_URI"), storage_options_json=options),
        "landing": LandingResource(uri=_env("FEEDBACK_LANDING_URI"), storage_options_json=options),
    }
