from flops.report import main

raise SystemExit(main())
