"""pgslots: who takes a PostgreSQL server's connection slots, and what to do about it."""

__version__ = "0.1.0"
