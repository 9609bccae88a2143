import sys

from jxas.cli import main

sys.exit(main())
