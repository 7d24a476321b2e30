from nextk.cli import main

main()
