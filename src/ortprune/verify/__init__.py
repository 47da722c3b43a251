"""verify: which ops a built library really implements (probe), and whether models give the same
outputs on it as on a reference (verify)."""

from ortprune.results.verify import ModelVerdict, ProbeReport, ProbeResult, VerifyReport
from ortprune.verify.compare import verify
from ortprune.verify.probe import all_known_ops, ops_for, probe

__all__ = ["ModelVerdict", "ProbeReport", "ProbeResult", "VerifyReport", "all_known_ops", "ops_for", "probe", "verify"]
