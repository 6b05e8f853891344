"""The vault: ECHO's trust core (terms defined here; filled in as modules land)."""
