from flops.graph import main

raise SystemExit(main())
