from e2e.realnode.nodes import main

raise SystemExit(main())
