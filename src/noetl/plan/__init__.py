"""Plan: the immutable, compiled form of a playbook that one execution runs."""

from noetl.plan.compiler import Plan, PlanStep, compile_plan, plan_from_raw

__all__ = ["Plan", "PlanStep", "compile_plan", "plan_from_raw"]
