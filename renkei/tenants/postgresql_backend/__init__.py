"""Renkei's database backend (``ENGINE = "renkei.tenants.postgresql_backend"``): see base.py."""
