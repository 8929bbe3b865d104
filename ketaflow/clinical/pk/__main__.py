"""``python -m ketaflow.clinical.pk simulate ...`` (same as ``ketaflow pk ...``)."""

from .cli import main

raise SystemExit(main())
