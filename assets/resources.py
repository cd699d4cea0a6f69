"""Storage resources, fed by environment variables so the same code runs locally or on object stores."""

from __future__ import annotations

import json
import os

import dagster as dg

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone


class LakeResource(dg.ConfigurableResource):
    """The Delta lake root (a local path or an object-store URI)."""

    uri: str
    storage_options_json: str = "{}"

    def lake(self) -> Lake:
        return Lake(self.uri, json.loads(self.storage_options_json or "{}"))


class LandingResource(dg.ConfigurableResource):
    """The landing zone root (a local path or an object-store URI)."""

    uri: str
    storage_options_json: str = "{}"

    def landing(self) -> LandingZone:
        return LandingZone(self.uri, json.loads(self.storage_options_json or "{}"))


def _setting(variable: str, default: str) -> str | dg.EnvVar:
    return dg.EnvVar(variable) if os.environ.get(variable) else default


def storage_resources() -> dict[str, dg.ConfigurableResource]:
    """The `lake` and `landing` resources: EnvVar when set, else the defaults under FEEDBACK_HOME."""
    home = FeedbackHome.from_env()
    options = _setting("FEEDBACK_STORAGE_OPTIONS", json.dumps(home.storage_options))
    return {
        "lake": LakeResource(uri=_setting("FEEDBACK_LAKE_URI", home.lake_uri), storage_options_json=options),
        "landing": LandingResource(uri=_setting("FEEDBACK_LANDING_URI", home.landing_uri), storage_options_json=options),
    }
