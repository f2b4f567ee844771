"""Alarms: conditions worth a person's attention (a leak, a silent meter, a tampered device),
raised once, updated on repeats, acknowledged and cleared. The rules are generic over telemetry
series, so meters today and sensors later share them."""
