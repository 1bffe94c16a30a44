"""Method studies: recovery of the simulator's truth and cross-checks against R (lme4)."""
