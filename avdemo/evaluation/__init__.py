"""Robustness evaluation: per-clip results (`engine`, kept in the results `store`), the paper's
tables built from them (`tables`), the report writers (`report`) and the claims checked
against the report (`findings`). Run it with `python -m avdemo.evaluation`."""
