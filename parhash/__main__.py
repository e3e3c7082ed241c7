from parhash.cli import main

main()
