"""Looking after the engine as a whole: host facts, garbage collection and prune, the
restore after a boot, and the consistency check."""
