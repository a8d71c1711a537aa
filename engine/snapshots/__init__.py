"""Container root file systems: the snapshotter (overlay or copied layers) and the mount
system calls it uses."""
