from ticker.cli.main import main

main()
