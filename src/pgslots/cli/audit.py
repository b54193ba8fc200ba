"""`pgslots audit`: not written yet (see its issue)."""
