"""Playbook DSL: YAML loading with line numbers, typed models and validation."""

from noetl.dsl.loader import load_playbook, parse_playbook
from noetl.dsl.model import Playbook, Step

__all__ = ["Playbook", "Step", "load_playbook", "parse_playbook"]
