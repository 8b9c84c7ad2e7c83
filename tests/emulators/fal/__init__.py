"""A fal queue emulator: ``FalEmulator`` in a test, ``python -m tests.emulators.fal`` as a process."""

from tests.emulators.fal.emulator import (
    EmulatorConfig,
    FalEmulator,
    fast_fal_retries,
    free_port,
    point_fal_uploads_at,
    prepare_fal_env,
)

__all__ = ["EmulatorConfig", "FalEmulator", "fast_fal_retries", "free_port", "point_fal_uploads_at",
           "prepare_fal_env"]
