from mixmerge.cli import main

main()
