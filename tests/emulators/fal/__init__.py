"""A fal queue emulator: ``FalEmulator`` in a test, ``python -m tests.emulators.fal`` as a process."""

from tests.emulators.fal.emulator import EmulatorConfig, FalEmulator, free_port, prepare_fal_env

__all__ = ["EmulatorConfig", "FalEmulator", "free_port", "prepare_fal_env"]
