"""What the worker does for each network operation."""

from console.operations.runner import handler


@handler("network.create")
def create(ctx):
    p = ctx.parameters
    ctx.driver.create_network(p["name"], subnet=p.get("subnet"), gateway=p.get("gateway"),
                              internal=p.get("internal", False), labels=p.get("labels") or None)
    network = ctx.driver.inspect_network(p["name"])
    subnets = ", ".join(c.get("Subnet", "") for c in network.get("IPAM", {}).get("Config", []))
    ctx.line(f"Created {p['name']} ({subnets})")
    return {"id": network["Id"], "name": p["name"], "subnet": subnets}


@handler("network.remove")
def remove(ctx):
    ctx.driver.remove_network(ctx.parameters["ref"])
    return {"removed": ctx.parameters["ref"]}


@handler("network.prune")
def prune(ctx):
    removed = ctx.driver.prune_networks()
    for name in removed:
        ctx.line(f"Deleted: {name}")
    return {"removed": removed}
