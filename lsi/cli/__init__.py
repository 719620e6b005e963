"""Command-line entry points: ``lsi`` (:mod:`lsi.cli.main`) and ``lsi-capture`` (:mod:`lsi.cli.capture`)."""
