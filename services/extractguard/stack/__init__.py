"""`extractguard up|down|status`: the services a gateway needs, supervised on one machine."""
