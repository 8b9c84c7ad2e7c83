from tests.emulators.fal.emulator import main

main()
