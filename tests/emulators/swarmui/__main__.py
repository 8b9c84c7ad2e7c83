from tests.emulators.swarmui.emulator import main

main()
