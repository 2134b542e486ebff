"""Scaling-law sweeps (the report's §4.4): the plan of DiT sizes × IsoFLOP budgets (`plan`)."""
