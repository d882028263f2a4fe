"""People: login accounts, residents, households, merchants and their operators."""
