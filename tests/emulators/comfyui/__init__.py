"""A ComfyUI emulator: ``ComfyEmulator`` in a test, ``python -m tests.emulators.comfyui`` as a process."""

from tests.emulators.comfyui.emulator import ComfyEmulator
from tests.emulators.comfyui.state import ComfyKnobs

__all__ = ["ComfyEmulator", "ComfyKnobs"]
