"""Payments: intake from banks, agents, online acquiring and the cash desk; allocation to debts;
penalties; the split between suppliers and remittance to them; the bill (ЕПД) with its QR code."""
