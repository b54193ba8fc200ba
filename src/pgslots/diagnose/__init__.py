"""`pgslots diagnose`: every input joined into one `Diagnosis`.

The flow is one direction: `gather` runs the parts it has input for (events pipeline, audit,
probe, watch record, lab run), each optional and each failure kept as a note; `join` relates
them (transactions to process groups, peaks to the budget, refusal wording to role and
version), runs the PGS4xx rules, interprets, settles the checklist and ranks the remedies.
The renderers in `pgslots.report` only display the result.
"""
