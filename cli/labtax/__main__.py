from labtax.main import main

main()
