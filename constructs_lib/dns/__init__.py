"""DNS records for the public host names (provider packages are imported only when used)."""

__all__ = ["cloudflare_records"]
