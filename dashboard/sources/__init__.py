"""Collectors: one asyncio task per source and environment, writing into its FleetStore."""
