"""``python -m mixmerge``: the command line (``mixmerge.cli``)."""
from mixmerge.cli import main

if __name__ == "__main__":  # worker processes (forkserver) import this module as __mp_main__
    main()
