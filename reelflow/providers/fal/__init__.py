"""fal.ai provider: arguments per endpoint, a queue client with deadlines and resume, output parsing.

No Prefect inside. ``fal_client`` is imported on first use, so a caller can still set
``FAL_QUEUE_RUN_HOST``/``FAL_RUN_HOST`` (read by fal-client at import) after importing this package.
"""

from reelflow.errors import FalDeadlineError, FalRequestError, FalSubmitUncertainError
from reelflow.providers.fal.arguments import build_arguments, fields_of, sent_fields
from reelflow.providers.fal.outputs import parse_image_output, parse_output, parse_video_output
from reelflow.providers.fal.queue import (
    INLINE_IMAGE_LIMIT,
    FalQueue,
    OnUpdate,
    RetryPolicy,
    image_reference,
)
from reelflow.providers.fal.translate import credentials_missing, describe_detail, is_transient
from reelflow.providers.fal.updates import Completed, FalUpdate, InProgress, LogLine, Queued

__all__ = [
    "INLINE_IMAGE_LIMIT",
    "Completed",
    "FalDeadlineError",
    "FalQueue",
    "FalRequestError",
    "FalSubmitUncertainError",
    "FalUpdate",
    "InProgress",
    "LogLine",
    "OnUpdate",
    "Queued",
    "RetryPolicy",
    "build_arguments",
    "credentials_missing",
    "describe_detail",
    "fields_of",
    "image_reference",
    "is_transient",
    "parse_image_output",
    "parse_output",
    "parse_video_output",
    "sent_fields",
]
