"""The books: double-entry postings per personal account, service, supplier and period, and the
balances derived from them. Billing posts accruals here; payments post payments and allocations."""
