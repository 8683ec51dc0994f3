"""A plug-in whose own code fails while it is imported."""

raise RuntimeError("the plug-in's own bug\nwith a second line")
