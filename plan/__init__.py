"""The deployment plan: a validated config turned into decisions, once (no aws_cdk, no cdk8s).

`config` says what the user wrote, section by section; `plan` resolves what needs several
sections together (where each worker role runs, EFA, whether the model fits, which platform
features the graphs need) and refuses a config whose plan cannot be resolved, with the same
one-line errors. Charts, stacks and ops read the plan; nothing here imports them.
"""

from plan.loader import load_config, plan_problems
from plan.resolve import DeploymentPlan, resolve

__all__ = ["DeploymentPlan", "load_config", "plan_problems", "resolve"]
