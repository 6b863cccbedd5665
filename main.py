"""Entry point of ``cdktf synth`` and ``make synth``: synthesize every stack of the config."""

import sys

from iac_tools.cli import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
