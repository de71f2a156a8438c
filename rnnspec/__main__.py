"""``python -m rnnspec`` (and ``torchrun -m rnnspec``) runs the CLI."""
import sys

from rnnspec.cli import main

sys.exit(main())
