from batchscribe.cli import main

main()
