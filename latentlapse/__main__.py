import sys

from latentlapse.cli import main

sys.exit(main())
