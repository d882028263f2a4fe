"""Redemption: offers, pay codes, merchant codes, redemptions and holds, refunds, settlement."""
