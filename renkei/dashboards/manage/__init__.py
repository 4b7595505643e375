"""Municipality administration pages (tenant admins only)."""
