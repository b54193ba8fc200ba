"""The lab's Django project: small, but built to fail the way real deployments fail.

It is a real Django project (settings, one app, migrations) shipped inside pgslots, run by
the real servers a deployment uses (gunicorn sync/gthread, gunicorn + uvicorn worker,
uvicorn `--workers`) and a real Celery prefork worker. What makes it realistic for
connection-slot exhaustion (domain reference §3):

* the default middleware stack, with sessions and authentication stored in the database;
* `ATOMIC_REQUESTS=True`, so the first connection of a request is opened by Django's
  per-view `transaction.atomic` wrapper, before the view body runs (§3.4b);
* a list endpoint that authenticates the user (session + user queries) and runs a query
  with a realistic share of server time;
* a Celery task that touches the database;
* an APM recorder (`apm.py`) that names transactions the way the New Relic agent does and
  writes every failed request and task as a `TransactionError` event.

Everything is configured by one JSON file named in `PGSLOTS_LAB_CONFIG` (written by
`pgslots.lab.app.AppConfigFile`), and `PGSLOTS_LAB_ROLE` (`web` or `worker`).
"""
