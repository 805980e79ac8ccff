"""On-site few-shot adaptation with GaLore, and named profiles of adapted weights."""

# Kept here, free of torch, so the command line, the worker and the app can list them cheaply.
METHODS = ("decoder", "galore", "adamw", "lora")  # the default first
