from report.run_report import main

raise SystemExit(main())
