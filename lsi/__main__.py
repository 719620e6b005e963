"""``python -m lsi`` is the ``lsi`` command."""

from lsi.main import main

if __name__ == "__main__":
    main()
