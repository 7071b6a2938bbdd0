from semiland.cli import main

raise SystemExit(main())
