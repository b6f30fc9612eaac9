"""Reporting: evaluation of trained runs, Table 1, statistics of paired claims, figures."""
