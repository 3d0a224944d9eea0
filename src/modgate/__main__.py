from modgate.cli import main

main()
