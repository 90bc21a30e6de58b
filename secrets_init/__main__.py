from secrets_init.cli import main

raise SystemExit(main())
