"""`python -m uploadcare_s3_copy_cli`: the same as the `uploadcare-s3-copy` console script."""

import sys

from uploadcare_s3_copy_cli.app import main

sys.exit(main())
