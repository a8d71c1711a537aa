"""Container networking: bridge networks with their namespaces, veths and addresses, published
ports, and the keeper that relays a container's published ports."""
