"""Object-store options, said once in delta-rs names and handed to each reader in the names it reads.

`FEEDBACK_STORAGE_OPTIONS` is one JSON object in delta-rs (object_store) names, e.g.
`{"AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "…", "AWS_ALLOW_HTTP": "true"}`.
The lake passes it to delta-rs as it is; the landing zone and every other file read goes through
fsspec (s3fs, gcsfs, adlfs), which takes other keyword names: `fsspec_options` translates through
`FSSPEC_NAMES`, the one mapping. Keys fsspec has no use for (`AWS_ALLOW_HTTP`,
`AWS_CONDITIONAL_PUT`, …) reach delta-rs only. Without options both read the environment
(`AWS_*`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_*`) as they always do.

On S3, concurrent Delta commits are safe only with conditional puts (`If-None-Match`): the lake
sets `aws_conditional_put=etag` for `s3://` tables unless the options say otherwise, and the
unsafe rename (`AWS_S3_ALLOW_UNSAFE_RENAME`), which lets two writers overwrite one commit, is refused.
"""

from __future__ import annotations

import json
import os
from typing import Any

# delta-rs key (lower case) -> the fsspec keyword path it becomes (("client_kwargs", "region_name")
# is `client_kwargs={"region_name": value}`); None: a delta-rs-only key, not passed to fsspec.
FSSPEC_NAMES: dict[str, tuple[str, ...] | None] = {
    "aws_access_key_id": ("key",),
    "aws_secret_access_key": ("secret",),
    "aws_session_token": ("token",),
    "aws_token": ("token",),
    "aws_endpoint_url": ("endpoint_url",),
    "aws_endpoint": ("endpoint_url",),
    "aws_region": ("client_kwargs", "region_name"),
    "aws_default_region": ("client_kwargs", "region_name"),
    "aws_profile": ("profile",),
    "aws_allow_http": None,
    "aws_conditional_put": None,
    "aws_copy_if_not_exists": None,
    "aws_virtual_hosted_style_request": None,
    "google_service_account": ("token",),
    "google_service_account_path": ("token",),
    "google_application_credentials": ("token",),
    "azure_storage_account_name": ("account_name",),
    "azure_storage_account_key": ("account_key",),
    "azure_storage_sas_key": ("sas_token",),
    "azure_storage_sas_token": ("sas_token",),
    "azure_storage_client_id": ("client_id",),
    "azure_storage_client_secret": ("client_secret",),
    "azure_storage_tenant_id": ("tenant_id",),
    "azure_storage_use_emulator": None,
}
_FSSPEC_ONLY = {"key", "secret", "token", "endpoint_url", "client_kwargs", "config_kwargs", "anon", "account_name"}
_UNSAFE_RENAME = "aws_s3_allow_unsafe_rename"
_CONDITIONAL_PUT = "aws_conditional_put"


def parse_options(raw: str | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """`FEEDBACK_STORAGE_OPTIONS` as a dict of delta-rs names; a ValueError naming the key or value otherwise.

    An unsafe rename is refused here as in the environment (delta-rs reads `AWS_S3_ALLOW_UNSAFE_RENAME`
    there too), since it lets two writers overwrite one Delta commit on S3."""
    env = os.environ if environ is None else environ
    text = raw or "{}"
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"FEEDBACK_STORAGE_OPTIONS is {text!r}: expected a JSON object of strings ({exc.msg})") from None
    if not isinstance(options, dict):
        raise ValueError(f"FEEDBACK_STORAGE_OPTIONS is {text!r}: expected a JSON object of strings")
    options = {str(k): str(v) for k, v in options.items()}
    for key, value in [*options.items(), *((k, v) for k, v in env.items() if k.lower() == _UNSAFE_RENAME)]:
        lowered = key.lower()
        if lowered in _FSSPEC_ONLY:
            names = sorted(k.upper() for k, path in FSSPEC_NAMES.items() if path and path[-1] == lowered)
            hint = f"; use the delta-rs name {' or '.join(names)}" if names else ""
            raise ValueError(
                f"FEEDBACK_STORAGE_OPTIONS key {key!r}: an fsspec name; expected delta-rs names (AWS_*, GOOGLE_*, AZURE_*){hint}"
            )
        if lowered == _UNSAFE_RENAME and value.lower() in ("true", "1", "yes"):
            raise ValueError(
                f"{key} is {value!r}: unsafe renames let concurrent writers overwrite each other's Delta commits; "
                "expected conditional puts (AWS_CONDITIONAL_PUT=etag, the default for s3:// here)"
            )
    return options


def delta_options(uri: str, options: dict[str, str]) -> dict[str, str] | None:
    """The options for delta-rs at `uri`: as given, with conditional puts on for `s3://` tables
    unless the options or the environment choose (`AWS_CONDITIONAL_PUT`)."""
    merged = dict(options)
    chosen = any(k.lower() == _CONDITIONAL_PUT for k in [*merged, *os.environ])
    if uri.startswith(("s3://", "s3a://")) and not chosen:
        merged[_CONDITIONAL_PUT] = "etag"
    return merged or None


def fsspec_options(options: dict[str, str]) -> dict[str, Any]:
    """The same options as fsspec keyword arguments (s3fs, gcsfs, adlfs); delta-rs-only keys left out."""
    translated: dict[str, Any] = {}
    for key, value in options.items():
        lowered = key.lower()
        if lowered not in FSSPEC_NAMES:
            continue
        path = FSSPEC_NAMES[lowered]
        if path is None:
            continue
        target = translated
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    addressing = _addressing_style(options)
    if addressing:
        translated.setdefault("config_kwargs", {}).setdefault("s3", {})["addressing_style"] = addressing
    return translated


def _addressing_style(options: dict[str, str]) -> str | None:
    lowered = {k.lower(): str(v).lower() for k, v in options.items()}
    if "aws_virtual_hosted_style_request" in lowered:
        return "virtual" if lowered["aws_virtual_hosted_style_request"] in ("true", "1", "yes") else "path"
    return None


def filesystem(location: str, options: dict[str, str]) -> tuple[Any, str]:
    """The fsspec filesystem and path of `location`, with the options translated. Listings are not
    cached: a long-lived process (a sensor, the Review App) must see files other hosts land."""
    from fsspec.core import url_to_fs

    return url_to_fs(location, use_listings_cache=False, **fsspec_options(options))


def read_bytes(location: str, options: dict[str, str]) -> bytes | None:
    """The bytes of a file at a local path or store URI, or None when there is no such file."""
    if "://" not in location or location.startswith("file://"):
        path = location[len("file://") :] if location.startswith("file://") else location
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
    fs, path = filesystem(location, options)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None
