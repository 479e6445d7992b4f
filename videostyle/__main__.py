from videostyle.cli import main

main()
