from smartplex.cli import main

main()
