"""`pgslots lab`: not written yet (see its issue)."""
