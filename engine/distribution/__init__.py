"""Distribution: talking to registries (the HTTP client), the credentials for them, and
pull / push of images between a registry and the image store."""
