"""Meters, devices and readings: intake from every source, validation, consumption per period."""
