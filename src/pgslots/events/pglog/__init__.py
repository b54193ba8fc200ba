"""What the three PostgreSQL server-log readers (stderr, csvlog, jsonlog) share.

* `prefix`: `log_line_prefix` compiled into a parser, and recognition of the common ones;
* `clock`: the log's timestamps (zone abbreviations, epoch) to aware UTC;
* `lines`: the few messages that matter (`connection received` / `authorized`,
  `disconnection`, `starting PostgreSQL`);
* `trace`: per-pid sessions, the FATAL-to-connection correlation, the pre-counted FATAL
  groups, and the connection trace that `events.serverlog.summarise` reads.
"""
