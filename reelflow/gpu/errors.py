"""GPU errors that decide what a pipeline does next."""

from __future__ import annotations

from reelflow.errors import TransientProviderError


class GpuUnreachableError(TransientProviderError):
    """The GPU endpoint did not answer before anything was submitted, so nothing was paid for.

    The one failure after which a pipeline may fall back to a cloud model.
    """
