from pgslots.cli import main

main()
