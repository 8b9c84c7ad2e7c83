from tests.emulators.vastai.emulator import main

main()
