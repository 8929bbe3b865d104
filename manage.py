#!/usr/bin/env python
"""Django's manage.py, for developers; people use the `ketaflow` command."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    from ketaflow.cli import main

    sys.exit(main(sys.argv[1:]))
