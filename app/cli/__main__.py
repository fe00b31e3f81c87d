"""``python -m app.cli``: the ``assay`` command without the installed script."""

from app.cli import main

main()
