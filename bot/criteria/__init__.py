"""Control criteria catalogues: SOC 2 Trust Services Criteria and ISO/IEC 27001:2022 Annex A.

Risks, playbook steps and the evidence bundle's criteria index refer to criteria by identifier
(`CC7.4`, `A1.2`, `A.5.24`); the catalogues, shipped as data files beside this module, say which
identifiers exist, so a typo is refused where it is typed instead of surfacing in an audit.
"""

from vigil_ir.criteria.catalogue import Criterion, catalogues, find, normalise, suggestion, unknown

__all__ = ["Criterion", "catalogues", "find", "normalise", "suggestion", "unknown"]
