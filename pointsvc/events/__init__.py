"""Events: sign-ups, rotating check-in codes, resident cards, attendance and hours."""
