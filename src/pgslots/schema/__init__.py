"""The JSON Schema of the output envelope (data only; see pgslots.envelope)."""
