"""`pgslots.django`: a Django app whose system checks read the running project's settings.

Add `"pgslots.django"` to `INSTALLED_APPS`: `manage.py check` (and `check --tag pgslots`,
`check --deploy`) then reports the connection-slot risks the real settings show, with ids
`pgslots.E0xx/W0xx/I0xx` mapped to the PGS codes; `manage.py pgslots probe|watch|audit` runs
the probe, the watch and the audit with the project's own DATABASES.

Importing this package (what `django.setup()` does) imports nothing heavy: the rules, the
probe and the CLI are imported when a check or the command runs. See docs/django.md.
"""
