"""Billing, cashier and ledger (物业收费): fee items, billing runs, bills, receipts, journal."""
