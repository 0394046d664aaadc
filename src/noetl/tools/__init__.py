"""Tools: what steps run. :mod:`noetl.tools.registry` maps a step type to a tool."""
