"""`pgslots events`: not written yet (see its issue)."""
