from labbook.cli import main

raise SystemExit(main())
