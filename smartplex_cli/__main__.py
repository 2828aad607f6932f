from smartplex_cli import main

main()
