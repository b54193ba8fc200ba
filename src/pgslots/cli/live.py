"""`pgslots live`: not written yet (see its issue)."""
