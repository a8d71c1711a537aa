import sys

from engine.cliclient import run

sys.exit(run(sys.argv[1:]))
