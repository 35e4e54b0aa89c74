"""GMAT script knowledge: override injection, ReportFile parsing."""
