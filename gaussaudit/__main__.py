from gaussaudit.cli import main

main()
