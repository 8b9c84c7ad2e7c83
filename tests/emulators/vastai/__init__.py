"""A vast.ai API + Instance Portal emulator: ``VastEmulator`` in a test, ``python -m tests.emulators.vastai``
as a process."""

from tests.emulators.vastai.emulator import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastConfig, VastEmulator

__all__ = ["API_KEY", "DEFAULT_INSTANCE_ID", "PORTAL_TOKEN", "VastConfig", "VastEmulator"]
