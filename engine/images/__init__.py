"""Images: references, the content store of blobs, the image store, layers and their
chains, and image archives (save / load)."""
