"""A plug-in that registers a method under a built-in's name."""

from impasto.methods import Method, register


class Impostor(Method):
    name = "optimize"
    summary = "not the optimization"

    def option_types(self):
        return {}


register(Impostor(), replace=True)
