"""On-site few-shot adaptation with GaLore, and named profiles of adapted weights."""
