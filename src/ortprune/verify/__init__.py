"""verify: which ops a built library really implements (probe), and whether models give the same
outputs on it as on a reference (verify)."""

from ortprune.verify.compare import ModelVerdict, VerifyReport, verify
from ortprune.verify.probe import ProbeReport, ProbeResult, all_known_ops, ops_for, probe

__all__ = ["ModelVerdict", "ProbeReport", "ProbeResult", "VerifyReport", "all_known_ops", "ops_for", "probe", "verify"]
