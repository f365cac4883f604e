"""Development tools, never deployed: loopback servers, the Uploadcare emulator, the demo, the local runner.

Importing the package puts the layer's package and the handlers on `sys.path`, as Lambda's /opt/python and task
root would, so `python -m devkit.<tool>` works from a clone without installing anything else.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "layers" / "common", *(ROOT / "functions" / name for name in ("webhook", "copier", "reconciler"))):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
