from tests.emulators.comfyui.emulator import main

main()
