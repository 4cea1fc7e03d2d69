"""S3 settings for every fsspec client of a run, from ``globals.yml`` (key ``s3``).

Datasets open S3 through fsspec/s3fs, each with its own ``credentials``/``fs_args``. Encryption
and the endpoint must apply to *all* of them, including datasets other pipelines add later, so
instead of repeating ``fs_args`` in every catalog entry ``hooks.S3StorageHooks`` puts them in fsspec's global
config (``fsspec.config.conf["s3"]``), which s3fs applies whenever a filesystem is created.
Explicit ``fs_args``/``credentials`` of a dataset still win. ``conf/prod/globals.yml``::

    s3:
      endpoint_url: null            # or http://127.0.0.1:9000 for any S3-compatible store
      region: ap-southeast-1
      sse_algorithm: aws:kms
      sse_kms_key_id: arn:aws:kms:...:key/...  # SSEKMSKeyId of every PUT / multipart upload

No credentials are read here: s3fs uses the default AWS chain (ECS task role, AWS_PROFILE, ...).
"""

from __future__ import annotations

import logging
from typing import Any

import fsspec.config

logger = logging.getLogger(__name__)


def s3_storage_options(settings: dict[str, Any] | None) -> dict[str, Any]:
    """s3fs constructor defaults for the ``s3`` block of globals (empty if there is none)."""
    settings = dict(settings or {})
    options: dict[str, Any] = {}
    if settings.get("endpoint_url"):
        options["endpoint_url"] = settings["endpoint_url"]
    if settings.get("region"):
        options["client_kwargs"] = {"region_name": settings["region"]}
    extra: dict[str, Any] = {}
    if settings.get("sse_algorithm"):
        extra["ServerSideEncryption"] = settings["sse_algorithm"]
        if settings.get("sse_kms_key_id"):
            extra["SSEKMSKeyId"] = settings["sse_kms_key_id"]
    elif settings.get("sse_kms_key_id"):
        raise ValueError("globals s3.sse_kms_key_id is set but s3.sse_algorithm is not")
    if extra:
        options["s3_additional_kwargs"] = extra
    return options


def configure_fsspec_s3(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Install the defaults of ``settings`` for every s3fs filesystem created from now on."""
    options = s3_storage_options(settings)
    if options:
        for protocol in ("s3", "s3a"):
            fsspec.config.conf.setdefault(protocol, {}).update(options)
        logger.info(
            "S3: endpoint %s, server-side encryption %s",
            options.get("endpoint_url", "AWS default"),
            options.get("s3_additional_kwargs", {}).get("ServerSideEncryption", "none"),
        )
    return options
