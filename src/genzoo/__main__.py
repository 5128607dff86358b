import sys

from genzoo.cli import main

sys.exit(main())
