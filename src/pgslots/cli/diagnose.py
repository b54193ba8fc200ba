"""`pgslots diagnose`: not written yet (see its issue)."""
