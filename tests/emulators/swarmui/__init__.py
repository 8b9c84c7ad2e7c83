"""A SwarmUI emulator: ``SwarmEmulator`` in a test, ``python -m tests.emulators.swarmui`` as a process."""

from tests.emulators.swarmui.emulator import VIDEO, SwarmConfig, SwarmEmulator, sample_mp4

__all__ = ["VIDEO", "SwarmConfig", "SwarmEmulator", "sample_mp4"]
