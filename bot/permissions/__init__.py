"""Who may do what: one policy, asked by every action that changes a record (docs/permissions.md)."""

from vigil_ir.permissions.policy import Action, Actor, Decision, Policy, PolicyError, Refused, decide
from vigil_ir.permissions.service import Permissions, build_permissions, policy_from_settings

__all__ = ["Action", "Actor", "Decision", "Permissions", "Policy", "PolicyError", "Refused", "build_permissions",
           "decide", "policy_from_settings"]
