import sys

from engine.supervisor.cliclient import run

sys.exit(run(sys.argv[1:]))
