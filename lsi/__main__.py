"""``python -m lsi`` is the ``lsi`` command."""

from lsi.cli.main import entry

if __name__ == "__main__":
    entry()
