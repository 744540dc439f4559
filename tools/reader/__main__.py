import sys

from tools.reader.pages import main

sys.exit(main())
