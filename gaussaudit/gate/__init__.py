"""Release gates: a candidate scan judged by a policy and against a baseline
(:func:`gate`), and drift of one model's embeddings on new data (:func:`drift`)."""
from gaussaudit.gate.drift import DriftReport, drift
from gaussaudit.gate.metrics import GATE_METRICS, GateMetric
from gaussaudit.gate.policy import Policy, find_policy, load_policy, parse_policy
from gaussaudit.gate.release import Check, GateResult, gate

__all__ = ["Check", "DriftReport", "GATE_METRICS", "GateMetric", "GateResult", "Policy", "drift", "find_policy", "gate",
           "load_policy", "parse_policy"]
